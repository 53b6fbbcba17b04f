#!/usr/bin/env bash
# A kube-hetzner "node" for the kh stabilize demo: a server in the (emulated) Hetzner Cloud API
# and an sshd bound to that server's public IPv4 (a loopback address 127.0.1.N), with fake
# systemctl / cloud-init / journalctl / passwd / curl that tell the scenario's story.
#
#   node.sh up CLUSTER BEHAVIOUR     BEHAVIOUR: pass | fail-firewall | stall-root-locked
#   node.sh down CLUSTER
#
# Needs HCLOUD_ENDPOINT and HCLOUD_TOKEN (the token goes to curl through a mode-600 header file,
# never on a command line) and KH_DEMO_DIR (keys, node port, state).
set -euo pipefail
cmd=$1 cluster=$2 behaviour=${3:-pass}
KH_DEMO_DIR=${KH_DEMO_DIR:-$(cd "$(dirname "$0")" && pwd)}
: "${HCLOUD_ENDPOINT:?}" "${HCLOUD_TOKEN:?}"
state="$KH_DEMO_DIR/nodes/$cluster"
port=$(<"$KH_DEMO_DIR/node-port")
mkdir -p "$KH_DEMO_DIR/nodes"

api() {  # api METHOD PATH [JSON]
  local header
  header=$(umask 077; mktemp)
  printf 'Authorization: Bearer %s\n' "$HCLOUD_TOKEN" >"$header"
  curl -fsS --max-time 10 -X "$1" -H "@$header" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} "$HCLOUD_ENDPOINT$2"
  local rc=$?
  rm -f "$header"
  return $rc
}

fake() {  # fake NAME BODY
  printf '#!/bin/sh\n%s\n' "$2" >"$state/bin/$1"
  chmod +x "$state/bin/$1"
}

up() {
  down >/dev/null  # idempotent: a rerun replaces what an earlier apply left
  mkdir -p "$state/bin"
  local body id ip
  body=$(printf '{"name":"%s-control-0","server_type":"cx22","image":"ubuntu-24.04","location":"fsn1","labels":{"cluster":"%s","provisioner":"terraform","role":"control-plane"}}' "$cluster" "$cluster")
  read -r id ip < <(api POST /servers "$body" | python3 -c 'import json,sys; s=json.load(sys.stdin)["server"]; print(s["id"], s["public_net"]["ipv4"]["ip"])')
  echo "hcloud_server.control[0]: created id=$id ipv4=$ip"
  case $behaviour in
    stall-root-locked)
      fake systemctl 'case "$1" in is-system-running) echo starting; exit 1;; *) echo "# /etc/systemd/system/$2.service"; echo "[Service]";; esac'
      fake cloud-init 'echo "status: running"; echo "extended_status: running"; echo "detail: DataSourceHetzner"; echo "boot_status_code: enabled-by-generator"'
      fake journalctl 'echo "Nov 21 10:00:01 '"$cluster"'-control-0 systemd[1]: Started OpenSSH Daemon."; echo "Nov 21 10:00:09 '"$cluster"'-control-0 sshd[812]: User root not allowed because account is locked"; echo "Nov 21 10:00:09 '"$cluster"'-control-0 sshd[812]: Connection closed by authenticating user root 10.0.0.1 port 50122 [preauth]"'
      fake passwd 'echo "root L 2024-11-02 -1 -1 -1 -1"'
      fake curl 'echo "curl: (7) Failed to connect to 127.0.0.1 port 6443: Connection refused" >&2; exit 7'
      ;;
    fail-firewall)
      fake systemctl 'case "$1" in is-system-running) echo running;; *) echo "# /etc/systemd/system/$2.service"; echo "ExecStart=/usr/local/bin/k3s server";; esac'
      fake cloud-init 'echo "status: done"'
      fake journalctl 'echo "Nov 21 10:00:30 '"$cluster"'-control-0 k3s[901]: Kube API server is now running"; echo "Nov 21 10:00:31 '"$cluster"'-control-0 k3s[901]: k3s is up and running"'
      fake passwd 'echo "root P 2024-11-02 0 99999 7 -1"'
      fake curl 'case "$*" in *127.0.0.1:6443*) echo ok;; *) exec /usr/bin/curl "$@";; esac'
      ;;
    *)
      fake systemctl 'case "$1" in is-system-running) echo running;; *) echo "[Service]";; esac'
      fake cloud-init 'echo "status: done"'
      fake journalctl 'echo "k3s is up and running"'
      fake passwd 'echo "root P 2024-11-02 0 99999 7 -1"'
      fake curl 'case "$*" in *127.0.0.1:6443*) echo ok;; *) exec /usr/bin/curl "$@";; esac'
      ;;
  esac
  cat >"$state/sshd_config" <<CONF
ListenAddress $ip
Port $port
HostKey $KH_DEMO_DIR/keys/node_host_ed25519
AuthorizedKeysFile $KH_DEMO_DIR/keys/authorized_keys
PidFile $state/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
SetEnv SHLVL=1 PATH=$state/bin:/usr/bin:/bin
LogLevel ERROR
CONF
  mkdir -p /run/sshd 2>/dev/null || true
  "$(command -v sshd || echo /usr/sbin/sshd)" -f "$state/sshd_config" -E "$state/sshd.log"
  echo "node $cluster-control-0: sshd on $ip:$port"
  case $behaviour in
    pass)
      for step in "cloud-init: done" "k3s: installed" "kube API: ready"; do sleep 0.3; echo "$step"; done ;;
    fail-firewall)
      echo "waiting for the kube API at https://$ip:6443 from the runner"
      sleep 1
      echo "Error: kube API https://$ip:6443 unreachable from the runner: dial tcp $ip:6443: connect: connection refused" >&2
      exit 1 ;;
    stall-root-locked)
      echo "remote-exec: connecting to $ip as root"
      exec sleep 600 ;;  # silent, as a stuck remote-exec is
  esac
}

down() {
  if [[ -s $state/sshd.pid ]]; then
    local pid
    pid=$(<"$state/sshd.pid")
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$state/sshd_config"; then kill "$pid" || true; fi
  fi
  local ids
  ids=$(api GET "/servers?label_selector=cluster%3D$cluster" | python3 -c 'import json,sys; print(" ".join(str(s["id"]) for s in json.load(sys.stdin)["servers"]))')
  for id in $ids; do api DELETE "/servers/$id" >/dev/null && echo "hcloud_server $id: deleted"; done
  rm -rf "$state"
}

"$cmd"
