# shellcheck shell=bash
# Shared helpers of Tools/testbed/*.sh (sourced, not run). Every wait has a deadline; processes are
# stopped by the PID recorded when they were started, after checking that PID is still ours.

TB_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TB_DIR="${KH_TESTBED_DIR:-$TB_REPO/.testbed}"
TB_EMULATOR="$TB_REPO/Tools/testbed/kube-emulator/server.py"
VENV="$TB_DIR/venv"

tb_log() { printf 'testbed: %s\n' "$*" >&2; }
tb_die() { printf 'testbed: error: %s\n' "$*" >&2; exit 1; }

# tb_port_free PORT: true when nothing listens on 127.0.0.1:PORT.
tb_port_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is not "taken"
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# tb_pick_port PREFERRED: PREFERRED when free, else (or for 0) a free port the OS hands out.
tb_pick_port() {
  if [[ $1 != 0 ]] && tb_port_free "$1"; then echo "$1"; return; fi
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# tb_pid_ours PIDFILE PATTERN: true when PIDFILE names a live process whose command line has PATTERN.
# tb_already_running NAME DIR PIDFILE PATTERN: true (and says so) when the service recorded
# in DIR/PIDFILE is still ours and alive; its port is in DIR/port.
tb_already_running() {
  local name=$1 dir=$2 pidfile=$3 pattern=$4
  tb_pid_ours "$dir/$pidfile" "$pattern" || return 1
  tb_log "$name: already running (pid $(<"$dir/$pidfile"), port $(<"$dir/port"))"
}

tb_pid_ours() {
  local pidfile=$1 pattern=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern"
}

# tb_stop NAME PIDFILE PATTERN: TERM the recorded PID, KILL after 5 s, forget the PID file.
tb_stop() {
  local name=$1 pidfile=$2 pattern=$3 pid i
  if ! tb_pid_ours "$pidfile" "$pattern"; then
    [[ -e $pidfile ]] && tb_log "$name: stale PID file removed"
    rm -f "$pidfile"
    return 0
  fi
  pid=$(<"$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    tb_log "$name: still alive after 5 s, sending KILL to $pid"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  tb_log "$name: stopped (pid $pid)"
}

# tb_spawn PIDFILE LOGFILE CMD...: start CMD in a session of its own (it outlives the caller's
# process group), stdin closed, output to LOGFILE; records its PID.
tb_spawn() {
  local pidfile=$1 logfile=$2
  shift 2
  setsid "$@" </dev/null >>"$logfile" 2>&1 &
  echo $! >"$pidfile"
}

# tb_wait_until SECONDS DESCRIPTION CMD...: run CMD every 0.2 s until it succeeds or the deadline.
tb_wait_until() {
  local seconds=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      tb_log "$what: not ready after ${seconds}s"
      return 1
    fi
    sleep 0.2
  done
}

# install_venv: .testbed/venv with Tools/testbed/requirements.txt (pinned), redone when that file changes.
install_venv() {
  local req="$TB_REPO/Tools/testbed/requirements.txt" stamp="$VENV/.kh-requirements.sha256" sum
  sum=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ -x $VENV/bin/python && -x $VENV/bin/kubectl && -s $stamp && $(<"$stamp") == "$sum" ]]; then
    return 0
  fi
  tb_log "venv: installing $(grep -v '^#' "$req" | xargs)"
  [[ -x $VENV/bin/python ]] || python3 -m venv --system-site-packages "$VENV"
  timeout 600 "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
  echo "$sum" >"$stamp"
}

# ---------------------------------------------------------------- Kubernetes emulator

# kube_prepare DIR: TLS (a CA and a server certificate for 127.0.0.1) and a bearer token, once.
kube_prepare() {
  local dir=$1
  mkdir -p "$dir/tls" "$dir/logs" "$dir/cache"
  chmod 700 "$dir"
  if [[ ! -s $dir/tls/server.crt || ! -s $dir/tls/ca.crt ]]; then
    (
      cd "$dir/tls" || exit 1
      umask 077
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -keyout ca.key -out ca.crt -subj "/CN=kh-testbed-ca" 2>/dev/null
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr -subj "/CN=kh-kube-emulator" 2>/dev/null
      printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >server.ext
      openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile server.ext -out server.crt 2>/dev/null
      rm -f server.csr ca.srl
    )
  fi
  if [[ ! -s $dir/token ]]; then
    (umask 077; python3 -c 'import secrets; print(secrets.token_hex(32))' >"$dir/token")
  fi
}

# kube_kubeconfig DIR PORT: DIR/kubeconfig for https://127.0.0.1:PORT with the token user (mode 600).
kube_kubeconfig() {
  local dir=$1 port=$2
  (
    umask 077
    python3 - "$dir" "$port" <<'PY'
import sys
from pathlib import Path
d, port = Path(sys.argv[1]), sys.argv[2]
token = (d / "token").read_text().strip()
(d / "kubeconfig").write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: kh-testbed
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {d / 'tls' / 'ca.crt'}
users:
- name: kh-testbed
  user:
    token: {token}
contexts:
- name: kh-testbed
  context:
    cluster: kh-testbed
    user: kh-testbed
    namespace: default
current-context: kh-testbed
""")
PY
  )
}

# kube_ready DIR PORT: the emulator answers /readyz over TLS.
kube_ready() {
  curl -fsS --max-time 2 --cacert "$1/tls/ca.crt" "https://127.0.0.1:$2/readyz" >/dev/null
}

# kube_start DIR PORT [PYTHON]: start the emulator for DIR on PORT and wait (15 s) until it is ready.
kube_start() {
  local dir=$1 port=$2 python=${3:-python3}
  kube_prepare "$dir"
  rm -rf "$dir/cache"  # kubectl's discovery cache of an earlier emulator is stale: it starts empty
  mkdir -p "$dir/cache"
  tb_spawn "$dir/emulator.pid" "$dir/emulator.log" "$python" -B "$TB_EMULATOR" --port "$port" \
    --token-file "$dir/token" --tls-cert "$dir/tls/server.crt" --tls-key "$dir/tls/server.key" \
    --logs-dir "$dir/logs"
  echo "$port" >"$dir/port"
  kube_kubeconfig "$dir" "$port"
  if ! tb_wait_until 15 "kube emulator" kube_ready "$dir" "$port"; then
    tail -n 20 "$dir/emulator.log" >&2 || true
    return 1
  fi
}

# kube_admin DIR PORT METHOD PATH [CURL ARGS...]: call the emulator's admin API with the token
# read from a file (never on a command line).
kube_admin() {
  local dir=$1 port=$2 method=$3 path=$4
  shift 4
  curl -fsS --max-time 10 --cacert "$dir/tls/ca.crt" -X "$method" \
    -H @<(printf 'Authorization: Bearer %s\n' "$(<"$dir/token")") "$@" "https://127.0.0.1:$port$path"
}
