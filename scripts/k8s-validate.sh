#!/usr/bin/env bash
# Renders every kustomize overlay under k8s/manifests and validates it strictly against the
# Kubernetes JSON schemas of several versions (kubernetes-validate, offline), then writes a
# JSON summary of ports, probe paths and Services that tests/tests/k8s_manifests.rs compares
# with the binary.
#
#   scripts/k8s-validate.sh [SUMMARY_FILE]
#
# Needs kubectl (for `kubectl kustomize`) and python3. kubernetes-validate is installed into
# the repository's .venv on first use (pinned below), not via tests/python/requirements.txt.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SUMMARY=${1:-}
KV_VERSION=1.37.0
# Oldest and newest versions we claim to support, plus one in between.
K8S_VERSIONS=(1.27.0 1.30.0 1.32.0)
OVERLAYS=(k8s/manifests/base k8s/manifests/overlays/dev k8s/manifests/overlays/prod)

command -v kubectl >/dev/null || { echo "k8s-validate: kubectl not found" >&2; exit 3; }

VENV=$ROOT/.venv
if [[ ! -x $VENV/bin/python ]]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -m pip show kubernetes-validate 2>/dev/null | grep -qx "Version: $KV_VERSION"; then
    echo "==> installing kubernetes-validate==$KV_VERSION into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$KV_VERSION"
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
rendered=()
for overlay in "${OVERLAYS[@]}"; do
    name=$(echo "$overlay" | tr '/' '_')
    echo "==> kubectl kustomize $overlay"
    kubectl kustomize "$overlay" > "$OUT/$name.yaml"
    rendered+=("$OUT/$name.yaml")
    for v in "${K8S_VERSIONS[@]}"; do
        echo "==> kubernetes-validate --strict -k $v $overlay"
        "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "$OUT/$name.yaml"
    done
done

if [[ -n $SUMMARY ]]; then
    "$VENV/bin/python" - "$SUMMARY" "${rendered[@]}" <<'PY'
import json, sys, yaml
out, files = sys.argv[1], sys.argv[2:]
summary = {}
for f in files:
    docs = [d for d in yaml.safe_load_all(open(f)) if d]
    overlay = {"statefulsets": [], "services": [], "pdbs": [], "configmaps": []}
    for d in docs:
        kind, meta, spec = d["kind"], d["metadata"], d.get("spec", {})
        if kind == "StatefulSet":
            pod = spec["template"]["spec"]
            c = pod["containers"][0]
            named = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            def probe(p):
                g = c[p]["httpGet"]
                port = g["port"]
                return {"path": g["path"], "port": named.get(port, port)}
            pre = c["lifecycle"]["preStop"]["httpGet"]
            overlay["statefulsets"].append({
                "name": meta["name"],
                "replicas": spec.get("replicas"),
                "podManagementPolicy": spec.get("podManagementPolicy"),
                "serviceName": spec.get("serviceName"),
                "pvcRetention": spec.get("persistentVolumeClaimRetentionPolicy"),
                "terminationGracePeriodSeconds": pod.get("terminationGracePeriodSeconds"),
                "ports": named,
                "startupProbe": probe("startupProbe"),
                "livenessProbe": probe("livenessProbe"),
                "readinessProbe": probe("readinessProbe"),
                "preStop": {"path": pre["path"], "port": named.get(pre["port"], pre["port"])},
                "env": {e["name"]: e.get("value") for e in c.get("env", [])},
                "args": c.get("args", []),
                "zones": [v for t in pod.get("affinity", {}).get("nodeAffinity", {})
                          .get("requiredDuringSchedulingIgnoredDuringExecution", {})
                          .get("nodeSelectorTerms", [])
                          for e in t.get("matchExpressions", []) for v in e.get("values", [])],
                "mountPath": c["volumeMounts"][0]["mountPath"],
            })
        elif kind == "Service":
            overlay["services"].append({
                "name": meta["name"],
                "headless": spec.get("clusterIP") == "None",
                "publishNotReadyAddresses": spec.get("publishNotReadyAddresses", False),
                "ports": {p["name"]: p["port"] for p in spec.get("ports", [])},
            })
        elif kind == "PodDisruptionBudget":
            overlay["pdbs"].append({"name": meta["name"], "maxUnavailable": spec.get("maxUnavailable")})
        elif kind == "ConfigMap":
            overlay["configmaps"].append({"name": meta["name"], "data": d.get("data", {})})
    summary[f.rsplit("/", 1)[1].removesuffix(".yaml")] = overlay
# Flat "path=value" lines: the Rust test reads them without a JSON or YAML parser.
def flat(prefix, v, lines):
    if isinstance(v, dict):
        for k, x in v.items():
            flat(f"{prefix}.{k}", x, lines)
    elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        for x in v:
            flat(f"{prefix}[{x.get('name', '?')}]", x, lines)
    else:
        lines.append(f"{prefix}={json.dumps(v) if not isinstance(v, str) else v}")
lines = []
flat("", summary, lines)
open(out, "w").write("\n".join(l[1:] for l in lines) + "\n")
PY
    echo "==> summary written to $SUMMARY"
fi
echo "==> manifests OK"
