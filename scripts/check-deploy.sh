#!/usr/bin/env bash
# Static checks of the deployment files (no container engine here): the Kubernetes
# manifests against the Kubernetes API schemas (kubernetes-validate), the compose file
# against the Compose specification (check-jsonschema's vendored compose-spec), and every
# agentwatch config they carry with `agentwatch validate --config`.
# Installs the validators, pinned, into a virtualenv under ~/.cache/agentwatch/tools.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export CHECK_DEPLOY_SCRATCH="$scratch"
venv="$HOME/.cache/agentwatch/tools/deploy-venv"
if [ ! -x "$venv/bin/check-jsonschema" ] || [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    kubernetes-validate==1.37.0 check-jsonschema==0.33.0 PyYAML==6.0.2
fi
bin="${CARGO_TARGET_DIR:-target}/release/agentwatch"
[ -x "$bin" ] || cargo build --release --quiet --bin agentwatch

echo "-- kubernetes manifests (deploy/k8s)" >&2
manifests=(deploy/k8s/configmap.yaml deploy/k8s/service.yaml deploy/k8s/statefulset.yaml
           deploy/k8s/poddisruptionbudget.yaml)
"$venv/bin/kubernetes-validate" --strict --kubernetes-version 1.31.0 "${manifests[@]}"
"$venv/bin/python" - <<'PY'
# kustomization lists exactly the manifests; the StatefulSet has what a group needs.
import sys, yaml
k = yaml.safe_load(open("deploy/k8s/kustomization.yaml"))
want = {"configmap.yaml", "service.yaml", "statefulset.yaml", "poddisruptionbudget.yaml"}
if set(k["resources"]) != want:
    sys.exit(f"kustomization resources {k['resources']} != {sorted(want)}")
s = yaml.safe_load(open("deploy/k8s/statefulset.yaml"))["spec"]
pod = s["template"]["spec"]
c = pod["containers"][0]
assert s["replicas"] >= 2, "replicas"
assert s["volumeClaimTemplates"][0]["metadata"]["name"] == "state", "a PVC per pod"
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness on /readyz"
cm = yaml.safe_load(open("deploy/k8s/configmap.yaml"))["data"]["agentwatch.toml"]
import re
timeout = re.search(r'^timeout = "(\d+)s"', cm, re.M)
assert timeout and int(timeout.group(1)) < pod["terminationGracePeriodSeconds"], \
    "[shutdown] timeout must end before terminationGracePeriodSeconds"
import os
with open(os.path.join(os.environ["CHECK_DEPLOY_SCRATCH"], "k8s.toml"), "w") as out:
    out.write(cm)
PY
echo "-- compose (deploy/compose)" >&2
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose/compose.yaml
echo "-- agentwatch configs" >&2
# The k8s config names a signing key mounted from a Secret; validate it without one.
sed '/^\[signing\]/,/^key_file/d' "$scratch/k8s.toml" >"$scratch/k8s-unsigned.toml"
for config in deploy/agentwatch.toml deploy/compose/agentwatch.toml "$scratch/k8s-unsigned.toml"; do
  "$bin" validate --config "$config" >/dev/null
done
echo "check-deploy.sh: deployment files valid" >&2
