#!/usr/bin/env bash
# The test command: installs what the tests need, builds (or reuses) the control
# plane, then formatting, lints, CRD drift, module structure and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

bash e2e/install-deps.sh
KUBEBUILDER_ASSETS=$(bash e2e/build-control-plane.sh | tail -n 1)
export KUBEBUILDER_ASSETS
# Outside the repository so a fresh clone reuses earlier builds.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/switchyard/target}
JOBS=${JOBS:-2}

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -j "$JOBS" -- -D warnings
echo "== generated CRDs are up to date"
cargo run -q -j "$JOBS" -- crd | diff -u crds/switchyard.yaml - \
  || { echo "crds/switchyard.yaml is stale: cargo run -- crd > crds/switchyard.yaml" >&2; exit 1; }
diff -u crds/switchyard.yaml charts/switchyard/crds/switchyard.yaml \
  || { echo "charts/switchyard/crds is stale: cp crds/switchyard.yaml charts/switchyard/crds/" >&2; exit 1; }
echo "== no import cycles between modules"
python3 .ci/import-cycles.py src sim/src bridge/src
echo "== no source file over 600 lines"
long=$(find src sim/src bridge/src -name '*.rs' -exec wc -l {} + | awk '$2 != "total" && $1 > 600 {print}')
[[ -z $long ]] || { echo "split these files (over 600 lines):" >&2; echo "$long" >&2; exit 1; }
echo "== cargo test"
cargo test --workspace -j "$JOBS" "$@"
