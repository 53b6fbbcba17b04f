#!/usr/bin/env bash
# A tour of kh on this machine: version, plugins, doctor with evidence, a hung tool
# stopped by its deadline, secrets redacted, an external kh-<verb> command.
set -uo pipefail
KH=${1:-.build/debug/kh}
KH=$(cd "$(dirname "$KH")" && pwd)/$(basename "$KH")
work=$(mktemp -d "${TMPDIR:-/tmp}/kh-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export KH_EVIDENCE_DIR="$work/evidence"
export NO_COLOR=${NO_COLOR:-}
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; }

step "kh and its plugins" "kh --version; kh plugins"
"$KH" --version
"$KH" plugins

step "what this machine has: tools, config, secrets (evidence is written)" "kh doctor"
"$KH" doctor
echo "(exit $?)"
run=$(ls -1d "$KH_EVIDENCE_DIR"/* | tail -1)
step "the evidence of that run" "ls $run; cat $run/summary.md"
ls -R "$run"
cat "$run/summary.md"

step "a tool that hangs is stopped at its deadline, its whole process group killed" \
  "PATH=<fake kubectl that sleeps>:\$PATH kh doctor --timeout 2s --require kubectl"
mkdir -p "$work/bin"
printf '#!/bin/sh\nsleep 300 & sleep 300\n' > "$work/bin/kubectl"
chmod +x "$work/bin/kubectl"
start=$(date +%s%N)
PATH="$work/bin:$PATH" "$KH" doctor --timeout 2s --require kubectl | grep -E "tool:kubectl|pass,"
echo "(exit ${PIPESTATUS[0]}: 3 = blocked by an unmet dependency; took $(( ($(date +%s%N) - start) / 1000000 )) ms)"
pgrep -f "sleep 300" >/dev/null && echo "LEFTOVER sleep processes!" || echo "no sleep process survived"
run=$(ls -1d "$KH_EVIDENCE_DIR"/* | tail -1)
echo "--- $run/logs/tool-kubectl.log"
cat "$run/logs/tool-kubectl.log"

step "secrets never reach output or evidence" "HCLOUD_TOKEN=… kh doctor (a tool echoes the token)"
printf '#!/bin/sh\necho "git version 2.39.5 (token $HCLOUD_TOKEN)"\n' > "$work/bin/git"
chmod +x "$work/bin/git"
rm -f "$work/bin/kubectl"
HCLOUD_TOKEN="demo-secret-$RANDOM$RANDOM" PATH="$work/bin:$PATH" "$KH" doctor | grep -E "secret:HCLOUD_TOKEN"
run=$(ls -1d "$KH_EVIDENCE_DIR"/* | tail -1)
echo "--- $run/logs/tool-git.log"
cat "$run/logs/tool-git.log"
grep -rl "demo-secret-" "$run" && echo "LEAK!" || echo "no file of the run holds the token"

step "an unknown verb runs kh-<verb> from PATH, like git and kubectl" "kh --output json hello world"
printf '#!/bin/sh\necho "kh-hello got: $* (KH_OUTPUT=$KH_OUTPUT, KH_VERSION=$KH_VERSION)"\n' > "$work/bin/kh-hello"
chmod +x "$work/bin/kh-hello"
PATH="$work/bin:$PATH" "$KH" --output json hello world

step "bad input is a clear error with exit 2" "kh doctor --config kh.yaml (with a typo)"
printf 'kh:\n  evidence_dri: ./x\n' > "$work/kh.yaml"
"$KH" doctor --config "$work/kh.yaml" | grep config
echo "(exit ${PIPESTATUS[0]})"
echo
echo "Tour done. Next: make test, and docs/architecture.md."
