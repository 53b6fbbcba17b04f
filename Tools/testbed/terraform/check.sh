#!/usr/bin/env bash
# Proves terraform works offline with the null provider from the testbed's filesystem mirror:
# init, apply and destroy of one null_resource, each under a deadline.
#   Tools/testbed/terraform/check.sh CLI_CONFIG_FILE WORK_DIR
set -euo pipefail
config=${1:?CLI config file}
work=${2:?work dir}
mkdir -p "$work"
cd "$work"
rm -rf .terraform .terraform.lock.hcl terraform.tfstate terraform.tfstate.backup
cat >main.tf <<'TF'
terraform {
  required_providers {
    null = {
      source  = "hashicorp/null"
      version = "2.1.2"
    }
  }
}

resource "null_resource" "proof" {
  triggers = {
    purpose = "kh testbed offline proof"
  }
}
TF
export TF_CLI_CONFIG_FILE="$config" TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
step() {
  local name=$1 start end
  shift
  start=$(date +%s.%N)
  timeout --kill-after=10 120 terraform "$@" -no-color
  end=$(date +%s.%N)
  timings+=("$name $(printf '%.1f' "$(echo "$end - $start" | bc -l 2>/dev/null || python3 -c "print($end-$start)")")s")
}
timings=()
step init init -input=false
step apply apply -input=false -auto-approve
terraform state list -no-color | grep -qx null_resource.proof
step destroy destroy -input=false -auto-approve
[[ -z $(terraform state list -no-color) ]]
echo "terraform $(terraform version -json | python3 -c 'import json,sys; print(json.load(sys.stdin)["terraform_version"])') offline with hashicorp/null 2.1.2 from the mirror: ${timings[*]}"
