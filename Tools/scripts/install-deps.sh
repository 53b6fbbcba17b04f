#!/usr/bin/env bash
# Installs the given Debian packages that are not installed yet. Idempotent; runs
# apt-get update only when something is missing. `--optional` warns instead of
# failing when a package cannot be installed.
set -euo pipefail
optional=0
if [[ "${1:-}" == "--optional" ]]; then optional=1; shift; fi
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "deps: all present ($*)"
  exit 0
fi
echo "deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; }; then
  if [[ $optional -eq 1 ]]; then
    echo "deps: WARNING: could not install ${missing[*]} (optional)" >&2
    exit 0
  fi
  echo "deps: could not install ${missing[*]}" >&2
  exit 1
fi
