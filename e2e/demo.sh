#!/usr/bin/env bash
# The demo: a local control plane, the simulators, a real redis-server, the
# operator, and the manifests in examples/; prints what converged.
#
#   bash e2e/demo.sh          run, print, tear everything down
#   bash e2e/demo.sh --keep   leave it running until Ctrl-C (prints the KUBECONFIG)
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=false
[[ "${1:-}" == "--keep" ]] && KEEP=true

bash e2e/install-deps.sh
KUBEBUILDER_ASSETS=$(bash e2e/build-control-plane.sh | tail -n 1)
export KUBEBUILDER_ASSETS
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/switchyard/target}
echo "== building switchyard, switchyard-sim and the control-plane launcher"
cargo build -q -j "${JOBS:-2}" --workspace --bins
BIN=$CARGO_TARGET_DIR/debug
KUBECTL="$KUBEBUILDER_ASSETS/kubectl"

WORK=$(mktemp -d -t switchyard-demo-XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then echo "timed out waiting for $what" >&2; return 1; fi
    sleep 0.5
  done
}

echo "== starting etcd + kube-apiserver + kube-controller-manager"
export KUBECONFIG=$WORK/kubeconfig
"$BIN/switchyard-control-plane" "$KUBECONFIG" >"$WORK/control-plane.log" 2>&1 &
PIDS+=($!)
wait_until 120 "the control plane" test -s "$KUBECONFIG" || { cat "$WORK/control-plane.log"; exit 1; }

echo "== starting redis-server, MariaDB (with a snapshot database) and the Forge simulator"
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --databases 16 --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
MYSQL_PORT=$(free_port)
MYSQL_SOCK=$WORK/mysqld.sock
mkdir -p "$WORK/mysql-tmp"
TMPDIR=$WORK/mysql-tmp mariadb-install-db --no-defaults --datadir="$WORK/mysql" --auth-root-authentication-method=normal \
  --skip-test-db --user="$(id -un)" >"$WORK/mariadb-install.log" 2>&1
mariadbd --no-defaults --datadir="$WORK/mysql" --socket="$MYSQL_SOCK" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
  --skip-name-resolve --skip-log-bin --tmpdir="$WORK/mysql-tmp" --user="$(id -un)" >"$WORK/mariadb.log" 2>&1 &
PIDS+=($!)
wait_until 60 "MariaDB" mariadb-admin --no-defaults --socket="$MYSQL_SOCK" -uroot ping
mariadb --no-defaults --socket="$MYSQL_SOCK" -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY 'demo';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE shop_snapshot;
USE shop_snapshot;
CREATE TABLE products (id INT PRIMARY KEY, name VARCHAR(50), price DECIMAL(8,2));
INSERT INTO products VALUES (1, 'lamp', 25.00), (2, 'chair', 80.00), (3, 'desk', 240.00);
CREATE VIEW cheap_products AS SELECT id, name FROM products WHERE price < 100;
SQL
MYSQL_URL="mysql://root:demo@127.0.0.1:$MYSQL_PORT"
FORGE_PORT=$(free_port)
"$BIN/switchyard-sim" forge --listen "127.0.0.1:$FORGE_PORT" --token demo-token --mysql-url "$MYSQL_URL" >"$WORK/forge.log" 2>&1 &
PIDS+=($!)
wait_until 30 "redis-server" redis-cli -p "$REDIS_PORT" ping
wait_until 30 "the Forge simulator" curl -fs -H 'Authorization: Bearer demo-token' "http://127.0.0.1:$FORGE_PORT/api/orgs/demo"

echo "== installing the CRDs"
"$BIN/switchyard" crd | "$KUBECTL" apply --server-side -f - >/dev/null
"$KUBECTL" wait --for=condition=Established crd -l '!nonexistent' --all --timeout=60s >/dev/null
"$KUBECTL" create namespace switchyard-system >/dev/null
"$KUBECTL" create namespace demo >/dev/null
# examples/preview-class.yaml lets namespaces with this label use the class.
"$KUBECTL" label namespace demo switchyard.dev/preview-class=shop >/dev/null
"$KUBECTL" -n switchyard-system create secret generic redis --from-literal=url="redis://127.0.0.1:$REDIS_PORT" >/dev/null
"$KUBECTL" -n switchyard-system create secret generic forge --from-literal=token=demo-token >/dev/null
# What examples/preview-class.yaml (admin-owned) and preview-environment.yaml reference.
"$KUBECTL" -n switchyard-system create secret generic mysql-admin --from-literal=url="$MYSQL_URL" >/dev/null
"$KUBECTL" -n demo create secret generic shop-secrets --from-literal=stripe=sk_demo >/dev/null

echo "== starting the operator"
OP_PORT=$(free_port)
cat >"$WORK/config.yaml" <<YAML
forge:
  baseUrl: http://127.0.0.1:$FORGE_PORT/api
  organization: demo
  tokenSecretRef: {namespace: switchyard-system, name: forge, key: token}
  baseDomain: preview.example.com
pools:
  - name: ports
    type: Port
    range: {start: 8000, end: 8999}
    dynamicFrom: 8500
  - name: redis
    type: RedisDatabase
    redisUrlSecretRef: {namespace: switchyard-system, name: redis, key: url}
controller:
  systemNamespace: switchyard-system
server:
  listen: 127.0.0.1:$OP_PORT
YAML
SWITCHYARD_LOG_FORMAT=text "$BIN/switchyard" run --config "$WORK/config.yaml" >"$WORK/operator.log" 2>&1 &
PIDS+=($!)
wait_until 60 "the operator to be ready" curl -fs "http://127.0.0.1:$OP_PORT/readyz"

echo "== applying examples/"
"$KUBECTL" apply -n demo -f examples/ >/dev/null
"$KUBECTL" -n demo wait --for=jsonpath='{.status.phase}'=Bound sharedresourceclaims --all --timeout=60s >/dev/null
echo "== waiting for the preview environment to become Ready (site, database clone, Redis, .env, workers, TLS, deploy)"
"$KUBECTL" -n demo wait --for=condition=Ready previewenvironment/shop-pr-42 --timeout=180s >/dev/null \
  || { "$KUBECTL" -n demo get previewenvironment shop-pr-42 -o yaml; tail -n 30 "$WORK/operator.log"; exit 1; }

echo
echo "\$ kubectl get switchyard -n demo"
"$KUBECTL" get switchyard -n demo
echo
echo "\$ kubectl get previewenvironment shop-pr-42 -n demo -o jsonpath=... (status)"
"$KUBECTL" -n demo get previewenvironment shop-pr-42 \
  -o jsonpath='{range .status.conditions[*]}{.type}={.status} {end}{"\n"}url={.status.url} site={.status.siteId} database={.status.databaseName} redisDb={.status.redisDatabase} workers={.status.workerIds} deployment={.status.lastDeployment.status}{"\n"}'
echo
echo "\$ mariadb -e 'SELECT * FROM pr_42_shop.products'   # cloned from shop_snapshot"
mariadb --no-defaults --socket="$MYSQL_SOCK" -uroot -e 'SELECT * FROM pr_42_shop.products; SELECT * FROM pr_42_shop.cheap_products'
echo
echo "\$ kubectl get leases -n switchyard-system"
"$KUBECTL" get leases -n switchyard-system
echo
echo "\$ curl -s localhost:$OP_PORT/metrics | grep switchyard_reconciles"
curl -s "http://127.0.0.1:$OP_PORT/metrics" | grep '^switchyard_reconciles_total' || true

if ! $KEEP; then
  echo
  echo "\$ kubectl delete previewenvironment shop-pr-42 -n demo   # tears down site, workers, certificate, database, Redis"
  "$KUBECTL" -n demo delete previewenvironment shop-pr-42 --timeout=120s
  echo "Forge sites left: $(curl -fs "http://127.0.0.1:$FORGE_PORT/_sim/state" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["sites"]))')"
  echo "pr_42_shop in MariaDB: $(mariadb --no-defaults --socket="$MYSQL_SOCK" -uroot -N -e "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='pr_42_shop'")"
fi

if $KEEP; then
  echo
  echo "The demo keeps running. In another shell:"
  echo "  export KUBECONFIG=$KUBECONFIG"
  echo "  $KUBECTL get switchyard -A"
  echo "Operator log: $WORK/operator.log. Press Ctrl-C to stop."
  trap 'exit 0' INT TERM
  while true; do sleep 3600; done
fi
