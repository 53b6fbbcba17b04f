#!/usr/bin/env bash
# make demo: `kh stabilize` end to end on an example harness (Tools/scripts/stabilize-demo):
# a module repository with v* tags, four scenarios whose terraform (null provider, local-exec)
# creates servers in the emulated Hetzner Cloud API and boots sshd "nodes" on their loopback
# IPv4s. One scenario passes per distro, one fails (kube API unreachable from the runner), one
# stalls (root account locked on the node). The summary shows the failure diagnosed and the
# stall triaged. Brings the testbed up (installing what it needs) and down again if it started it.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
KH=${1:-$repo/.build/debug/kh}
KH=$(cd "$(dirname "$KH")" && pwd)/$(basename "$KH")
export NO_COLOR=${NO_COLOR:-}
step() { printf '\n\033[1m== %s\033[0m\n' "$1"; }

was_up=0
bash "$repo/Tools/testbed/testbed.sh" status >/dev/null 2>&1 && was_up=1
step "testbed: Hetzner API emulator, terraform mirror, sshd (installs what is missing)"
bash "$repo/Tools/testbed/testbed.sh" up || exit 3
finish() {
  # Nodes whose terraform never ran its destroy step (a killed apply leaves them tainted):
  # stop their sshd by pid file, checked against its command line.
  for pidfile in "$demo"/nodes/*/sshd.pid; do
    [[ -s $pidfile ]] || continue
    pid=$(<"$pidfile")
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$demo/nodes/" && kill "$pid" 2>/dev/null
  done
  [[ $was_up == 1 ]] || bash "$repo/Tools/testbed/testbed.sh" down >/dev/null
}
demo="$repo/.kh/demo"
trap finish EXIT

step "example harness under .kh/demo"
bash "$repo/Tools/scripts/stabilize-demo/setup.sh" "$demo" || exit 3
# shellcheck disable=SC1091
source "$repo/.testbed/env"
export HCLOUD_TOKEN=$KH_TESTBED_HCLOUD_TOKEN HCLOUD_ENDPOINT=$KH_TESTBED_HCLOUD_ENDPOINT
cd "$demo" || exit 3
find . -maxdepth 3 -name main.tf -path '*scenarios_v3*' | sort

step "kh stabilize --yes   (gates, clean, snapshots, matrix + triage, targeted rerun, upgrade, cleanup)"
start=$(date +%s)
"$KH" stabilize --config "$demo/kh.yaml" --yes
rc=$?
echo "(exit $rc after $(( $(date +%s) - start )) s: 1 = a scenario failed, as this demo means it to)"

summary=$(ls -1 "$demo"/harness/scenarios_v3/summary-*.md | tail -1)
step "what the summary says about the failure and the stall"
grep -E '^\| s[0-9]|^- \*\*|fix path|stalled at|^## ' "$summary" | head -40

step "kh matrix status"
"$KH" matrix status --config "$demo/kh.yaml"

step "summary"
echo "$summary"
echo "(JSON and JUnit beside it; evidence: $(ls -1d "$demo"/runs/* | tail -1))"
