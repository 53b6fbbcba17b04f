#!/usr/bin/env bash
# Builds the example harness of the kh stabilize demo under DIR (default .kh/demo):
#   module/            a kube-hetzner stand-in: a git repository (branch staging, tags v1.0.0 and
#                      v1.1.0, remote "origin" = module.git) whose terraform makes "nodes" (node.sh)
#   harness/           the kube-test stand-in: scenarios_v3/<scenario>/main.tf using the module
#   keys/              the client key kh logs in with (IdentitiesOnly) and the nodes' host key
#   kh.yaml            the stabilize: section pointing at all of it
# Scenarios: s1-k3s-basic and s2-rke2-basic pass, s3-k3s-kubeapi fails (kube API unreachable from
# the runner while healthy inside), s4-leapmicro-stall goes silent (root account locked).
# It also makes the Leap Micro snapshots (k3s and rke2, x86 and arm) in the emulated API.
# Needs the testbed's .testbed/env (hcloud emulator, terraform mirror).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
dir=${1:-$repo/.kh/demo}
# shellcheck disable=SC1091
[[ -n ${HCLOUD_ENDPOINT:-} && -n ${HCLOUD_TOKEN:-} ]] || source "$repo/.testbed/env"
export HCLOUD_ENDPOINT=${HCLOUD_ENDPOINT:-${KH_TESTBED_HCLOUD_ENDPOINT:?the testbed has no Hetzner API emulator: run make testbed-up}}
export HCLOUD_TOKEN=${HCLOUD_TOKEN:-$KH_TESTBED_HCLOUD_TOKEN}

# Nodes of an earlier demo: stop their sshd (by pid file, checked) and forget the folder.
if [[ -d $dir/nodes ]]; then
  for pidfile in "$dir"/nodes/*/sshd.pid; do
    [[ -s $pidfile ]] || continue
    pid=$(<"$pidfile")
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/nodes/" && kill "$pid" 2>/dev/null || true
  done
fi
rm -rf "$dir"
mkdir -p "$dir/keys" "$dir/nodes" "$dir/harness/scenarios_v3"
dir=$(cd "$dir" && pwd)
ssh-keygen -q -t ed25519 -N '' -C kh-demo-client -f "$dir/keys/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C kh-demo-node -f "$dir/keys/node_host_ed25519"
cp "$dir/keys/id_ed25519.pub" "$dir/keys/authorized_keys"
python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' >"$dir/node-port"
install -m 755 "$repo/Tools/scripts/stabilize-demo/node.sh" "$dir/node.sh"

# ---- the module repository
git_() { git -C "$dir/module" -c user.name=kh-demo -c user.email=demo@kh.invalid "$@"; }
mkdir -p "$dir/module"
git init -q -b staging "$dir/module"
printf '.terraform/\n.terraform.lock.hcl\n*.tfstate*\n' >"$dir/module/.gitignore"
cat >"$dir/module/variables.tf" <<'TF'
variable "cluster_name" {
  type = string
}

variable "behaviour" {
  type    = string
  default = "pass"
}

variable "node_script" {
  type = string
}

variable "firewall_kube_api_source" {
  type    = list(string)
  default = ["0.0.0.0/0"]
}
TF
cat >"$dir/module/main.tf" <<'TF'
resource "null_resource" "control" {
  triggers = {
    cluster   = var.cluster_name
    behaviour = var.behaviour
    script    = var.node_script
  }

  provisioner "local-exec" {
    command = "${self.triggers.script} up ${self.triggers.cluster} ${self.triggers.behaviour}"
  }

  provisioner "local-exec" {
    when    = destroy
    command = "${self.triggers.script} down ${self.triggers.cluster}"
  }
}
TF
git_ add -A && git_ commit -qm "module: control plane node" && git_ tag v1.0.0
cat >>"$dir/module/main.tf" <<'TF'

resource "null_resource" "firewall" {
  triggers = {
    cluster = var.cluster_name
    sources = join(",", var.firewall_kube_api_source)
  }
}
TF
git_ add -A && git_ commit -qm "module: kube API firewall" && git_ tag v1.1.0
cat >>"$dir/module/main.tf" <<'TF'

resource "null_resource" "kubeconfig" {
  triggers = {
    cluster = var.cluster_name
  }
}

output "cluster" {
  value = var.cluster_name
}
TF
git_ add -A && git_ commit -qm "module: kubeconfig and cluster output (staging, after v1.1.0)"
git clone -q --bare "$dir/module" "$dir/module.git"
git_ remote add origin "$dir/module.git"
git_ fetch -q origin
git_ branch -q --set-upstream-to=origin/staging staging

# ---- the harness and its scenarios
printf 'terraform {\n  required_version = ">= 1.5"\n}\n' >"$dir/harness/main.tf"
scenario() {  # scenario NAME BEHAVIOUR [firewall source]
  mkdir -p "$dir/harness/scenarios_v3/$1"
  {
    echo 'module "kube_hetzner" {'
    echo "  source                   = \"$dir/module\""
    echo "  cluster_name             = \"khv3-$1\""
    echo "  behaviour                = \"$2\""
    echo "  node_script              = \"$dir/node.sh\""
    echo "  firewall_kube_api_source = [\"${3:-127.0.0.1/32}\"]"
    echo '}'
  } >"$dir/harness/scenarios_v3/$1/main.tf"
}
scenario s1-k3s-basic pass
scenario s2-rke2-basic pass
scenario s3-k3s-kubeapi fail-firewall 203.0.113.7/32
scenario s4-leapmicro-stall stall-root-locked

# ---- snapshots (as packer would leave them): Leap Micro k3s and rke2, x86 and arm
snapshot() {  # snapshot SERVER_TYPE DISTRO
  local header id
  header=$(umask 077; mktemp)
  printf 'Authorization: Bearer %s\n' "$HCLOUD_TOKEN" >"$header"
  id=$(curl -fsS -X POST -H "@$header" -H 'Content-Type: application/json' \
    --data "{\"name\":\"packer-$2-$1\",\"server_type\":\"$1\",\"image\":\"ubuntu-24.04\",\"location\":\"fsn1\"}" \
    "$HCLOUD_ENDPOINT/servers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["server"]["id"])')
  curl -fsS -X POST -H "@$header" -H 'Content-Type: application/json' \
    --data "{\"type\":\"snapshot\",\"description\":\"Leap Micro $2 ($1)\",\"labels\":{\"leapmicro-snapshot\":\"yes\",\"kube-hetzner/k8s-distro\":\"$2\"}}" \
    "$HCLOUD_ENDPOINT/servers/$id/actions/create_image" >/dev/null
  curl -fsS -X DELETE -H "@$header" "$HCLOUD_ENDPOINT/servers/$id" >/dev/null
  rm -f "$header"
}
for distro in k3s rke2; do snapshot cx22 "$distro"; snapshot cax11 "$distro"; done

# ---- kh.yaml
cat >"$dir/kh.yaml" <<YAML
kh:
  evidence_dir: $dir/runs
stabilize:
  module_dir: $dir/module
  harness_dir: $dir/harness
  scenarios:
    - s1-k3s-basic
    - s2-rke2-basic
    - s3-k3s-kubeapi
    - s4-leapmicro-stall
  prefix: khv3-
  hcloud:
    endpoint: $HCLOUD_ENDPOINT
  ssh:
    key: $dir/keys/id_ed25519
    user: $(id -un)
    port: $(<"$dir/node-port")
    host_key_policy: "off"
    connect_timeout: 5s
    command_timeout: 10s
  timeouts:
    init: 60s
    apply: 12s
    idle: 3s
    destroy: 60s
    plan: 60s
  triage:
    runner_source: 127.0.0.1/32
  upgrade:
    worktree_dir: $dir/worktrees
    server_resource_types: [null_resource]
YAML
echo "$dir"
