#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine (as root or with sudo):
#   bash scripts/bootstrap.sh run    install what is missing, then serve with demo data on :8000
#   bash scripts/bootstrap.sh test   install what is missing, then lint, type-check and run all tests
#   bash scripts/bootstrap.sh bench  install what is missing, then run every benchmark in bench/
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-run}
shift || true
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "Please install these packages with your package manager: $*" >&2
    echo "(macOS: brew install postgresql postgis python@3.11)" >&2
    exit 1
  fi
  say "installing system packages: $*"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

pg_majors() {
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && basename "$(dirname "$dir")"
  done 2>/dev/null | sort -n
}

# --- system packages: Python with venv, PostgreSQL server, PostGIS ------------------------
missing=()
command -v "$PYTHON" >/dev/null 2>&1 || missing+=(python3)
"$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
[ -n "$(pg_majors)" ] || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

postgis_missing=()
for major in $(pg_majors); do
  [ -f "/usr/share/postgresql/$major/extension/postgis.control" ] \
    || postgis_missing+=("postgresql-$major-postgis-3")
done
[ ${#postgis_missing[@]} -eq 0 ] || apt_install "${postgis_missing[@]}"

"$PYTHON" - <<'PY' || { echo "Python >= 3.11 is required (found $("$PYTHON" --version))" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

# --- the project in its own virtual environment (reinstalled when pyproject.toml changes) ---
stamp="$VENV/.pyproject.sha256"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing the project into $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi

# --- map libraries (Leaflet, VectorGrid) from the npm registry, served by the service itself --
assets=maps/assets
if ! command -v npm >/dev/null 2>&1; then apt_install nodejs npm; fi
lock_sum=$(sha256sum "$assets/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$assets/node_modules/leaflet/dist/leaflet.js" ] \
   || [ "$(cat "$assets/node_modules/.lock.sha256" 2>/dev/null)" != "$lock_sum" ]; then
  say "installing map libraries (npm ci in $assets)"
  npm ci --prefix "$assets" --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > "$assets/node_modules/.lock.sha256"
fi

# PostgreSQL will not run as root; as root the embedded cluster runs as 'postgres', which
# must be able to reach the data directory. A checkout under /root is closed to it.
if [ "$(id -u)" -eq 0 ] && [ -z "${GEOSERVICE_DATA_DIR:-}" ] && [ -z "${DATABASE_URL:-}${GEOSERVICE_DATABASE_URL:-}" ] \
   && ! runuser -u postgres -- test -x "$PWD" 2>/dev/null; then
  export GEOSERVICE_DATA_DIR=/var/lib/geoservice
  mkdir -p "$GEOSERVICE_DATA_DIR"
  say "the postgres user cannot enter $PWD; keeping data in $GEOSERVICE_DATA_DIR"
fi

case "$mode" in
  run)
    say "starting the service on http://${GEOSERVICE_HOST:-127.0.0.1}:${GEOSERVICE_PORT:-8000}"
    exec "$VENV/bin/geoservice" serve --demo "$@"
    ;;
  test)
    # The map tests drive Debian's Chromium headless (Playwright, no browser download).
    command -v chromium >/dev/null 2>&1 || apt_install chromium
    say "ruff (lint and format)"
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    say "mypy"
    "$VENV/bin/mypy"
    say "pytest"
    exec "$VENV/bin/pytest" "$@"
    ;;
  bench)
    # Peers measured in the same run: ogr2ogr (gdal-bin), tipg; GNU time reads peak memory.
    command -v ogr2ogr >/dev/null 2>&1 && [ -x /usr/bin/time ] || apt_install gdal-bin time
    # map_pages measures the pages in Chromium; tiles installs tipg into bench/.peers itself.
    command -v chromium >/dev/null 2>&1 || apt_install chromium
    exec "$VENV/bin/python" -m bench "$@"
    ;;
  *)
    echo "usage: bash scripts/bootstrap.sh run|test|bench [args...]" >&2
    exit 2
    ;;
esac
