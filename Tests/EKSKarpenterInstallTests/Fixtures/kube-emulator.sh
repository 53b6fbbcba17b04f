#!/usr/bin/env bash
# A private instance of the testbed's Kubernetes API emulator (Tools/testbed/kube-emulator) for the
# eks-karpenter-install tests: nodes are cluster-scoped and phase 3 counts every node, so these
# tests reset the emulator between cases and must not share it with other suites. Uses the
# testbed's own helpers (lib.sh): TLS, token, kubeconfig, readiness wait, stop by PID.
#
#   kube-emulator.sh start DIR   start on a free port; prints the port
#   kube-emulator.sh reset DIR   forget every object and CRD
#   kube-emulator.sh stop DIR    stop it (by its recorded PID)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../../../Tools/testbed/lib.sh
source "$HERE/../../../Tools/testbed/lib.sh"
cmd=$1 dir=$2
case $cmd in
  start)
    port=$(tb_pick_port 0)
    kube_start "$dir" "$port" >&2
    echo "$port"
    ;;
  reset) kube_admin "$dir" "$(<"$dir/port")" POST /_emulator/reset >/dev/null ;;
  stop) tb_stop "kube emulator (eks tests)" "$dir/emulator.pid" "$TB_EMULATOR" ;;
  *) echo "usage: $0 start|reset|stop DIR" >&2; exit 2 ;;
esac
