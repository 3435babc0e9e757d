#!/usr/bin/env bash
# Builds a real Kubernetes control plane (kube-apiserver, kube-controller-manager,
# etcd, kubectl, helm) from Go modules with the ordinary `go` client, and caches the
# binaries outside the repository. A no-op when they are already there.
#
# Prints the directory holding the binaries on its last line of stdout.
#
# Environment:
#   KUBEBUILDER_ASSETS   use this directory instead, when it already holds the binaries
#   SWITCHYARD_CACHE     cache root (default ~/.cache/switchyard)
set -euo pipefail

K8S_VERSION=1.34.4          # k8s-openapi feature v1_34
STAGING_VERSION=0.34.4      # staging modules are tagged v0.X.Y for Kubernetes v1.X.Y
ETCD_VERSION=3.6.5          # >= 3.5.13 for RequestWatchProgress (streaming watches)
HELM_VERSION=3.19.0
BINARIES=(kube-apiserver kube-controller-manager etcd kubectl helm)

have_all() {
  local dir=$1 b
  for b in "${BINARIES[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && have_all "$KUBEBUILDER_ASSETS"; then
  echo "$KUBEBUILDER_ASSETS"; exit 0
fi

CACHE=${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}
OUT=$CACHE/k8s-$K8S_VERSION/bin
if have_all "$OUT"; then echo "$OUT"; exit 0; fi

command -v go >/dev/null || { echo "go is required to build the control plane" >&2; exit 1; }
export GOSUMDB=off GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false
# Two cores: keep the linker's peak memory and the machine's responsiveness sane.
PARALLEL=${GO_BUILD_PARALLEL:-2}
mkdir -p "$OUT"
WORK=$CACHE/build
mkdir -p "$WORK"
log() { echo "[build-control-plane] $*" >&2; }

build_kubernetes() {
  local dir=$WORK/kubernetes-$K8S_VERSION minor ldf p
  mkdir -p "$dir"; cd "$dir"
  if [[ ! -f go.mod ]]; then
    go mod init local/kbuild >&2
    # Keep upstream's GODEBUG defaults: a wrapper at a newer go line would change them.
    go mod edit -go=1.24.0 -godebug=default=go1.24
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    # Every staging module k/k replaces with ./staging must be pinned to its v0.X.Y tag.
    for m in $(sed -n 's|^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\1|p' "$gomod"); do
      go mod edit "-replace=$m=$m@v$STAGING_VERSION"
    done
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    go get "k8s.io/kubernetes@v$K8S_VERSION" >&2
    go mod tidy -e >&2 || true
  fi
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  ldf="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  for b in kube-apiserver kube-controller-manager kubectl; do
    [[ -x "$OUT/$b" ]] && continue
    log "building $b v$K8S_VERSION"
    go build -p "$PARALLEL" -trimpath -tags=notest -ldflags="$ldf" -o "$OUT/$b.tmp" "k8s.io/kubernetes/cmd/$b" >&2
    mv "$OUT/$b.tmp" "$OUT/$b"
  done
}

build_etcd() {
  [[ -x "$OUT/etcd" ]] && return
  local dir=$WORK/etcd-$ETCD_VERSION
  mkdir -p "$dir"; cd "$dir"
  if [[ ! -f go.mod ]]; then
    go mod init local/etcdbuild >&2
    cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2
    go mod tidy >&2
  fi
  log "building etcd v$ETCD_VERSION"
  go build -p "$PARALLEL" -trimpath -ldflags="-s -w" -o "$OUT/etcd.tmp" . >&2
  mv "$OUT/etcd.tmp" "$OUT/etcd"
}

build_helm() {
  [[ -x "$OUT/helm" ]] && return
  log "building helm v$HELM_VERSION"
  GOBIN="$WORK/helm-bin" go install -p "$PARALLEL" -trimpath \
    -ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" >&2
  mv "$WORK/helm-bin/helm" "$OUT/helm"
}

build_etcd
build_kubernetes
build_helm
have_all "$OUT" || { echo "control plane build incomplete in $OUT" >&2; exit 1; }
echo "$OUT"
