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
# PDF reports (WeasyPrint) lay out text with Pango and need a font.
ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0.so.0' || missing+=(libpango-1.0-0 libpangoft2-1.0-0)
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
# SOSI files are read by Debian's GDAL (its SOSI driver; pyogrio's bundled GDAL has none).
ogrinfo --formats 2>/dev/null | grep -q SOSI || missing+=(gdal-bin)
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
ensure_venv() {  # ensure_venv PYTHON VENV EXTRAS
  local python=$1 venv=$2 extras=$3 stamp want
  stamp="$venv/.pyproject.sha256"
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing the project into $venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q -e ".$extras"
    echo "$want" > "$stamp"
  fi
}
ensure_venv "$PYTHON" "$VENV" "[dev]"

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
    if [ "$(id -u)" -ne 0 ]; then
      say "starting the service on http://${GEOSERVICE_HOST:-127.0.0.1}:${GEOSERVICE_PORT:-8000}"
      exec "$VENV/bin/geoservice" serve --demo "$@"
    fi
    # Never as root: the service runs as the unprivileged system user 'geoservice', which
    # owns its data folder and nothing else (its database role is no superuser either).
    run_user=geoservice
    id -u "$run_user" >/dev/null 2>&1 \
      || useradd --system --user-group --home-dir /var/lib/geoservice --shell /usr/sbin/nologin "$run_user"
    data=${GEOSERVICE_DATA_DIR:-/var/lib/geoservice}
    mkdir -p "$data"
    chown "$run_user": "$data"
    chmod 700 "$data"
    if ! runuser -u "$run_user" -- test -r "$PWD/pyproject.toml" -a -r "$PWD/maps/assets/package.json"; then
      echo "The service runs as the unprivileged user '$run_user', which cannot read $PWD." >&2
      echo "Put the checkout where other users can read it (e.g. /opt/geoservice)," >&2
      echo "or run this command as a normal (non-root) user." >&2
      exit 1
    fi
    run_venv=$VENV
    if ! runuser -u "$run_user" -- "$VENV/bin/python" -c 'import geoservice' >/dev/null 2>&1; then
      # The interpreter behind $VENV lives where '$run_user' cannot go (e.g. pyenv under
      # /root): a second environment on the system's Python serves the service.
      [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1 \
        || apt_install python3 python3-venv
      run_venv=.venv-service
      ensure_venv /usr/bin/python3 "$run_venv" ""
      chmod -R o+rX "$run_venv"
    fi
    say "starting the service as '$run_user' on http://${GEOSERVICE_HOST:-127.0.0.1}:${GEOSERVICE_PORT:-8000}"
    # setpriv execs in place: no process stays behind as root.
    exec setpriv --reuid="$run_user" --regid="$run_user" --init-groups \
      env GEOSERVICE_DATA_DIR="$data" HOME="$data" USER="$run_user" \
      "$run_venv/bin/geoservice" serve --demo "$@"
    ;;
  test)
    # The map tests drive Debian's Chromium headless (Playwright, no browser download); the
    # OGC tests use QGIS as a client (Debian's python3-qgis, headless, marker "qgis").
    command -v chromium >/dev/null 2>&1 || apt_install chromium
    /usr/bin/python3 -c 'import qgis.core' >/dev/null 2>&1 || apt_install python3-qgis
    say "ruff (lint and format)"
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    say "mypy"
    "$VENV/bin/mypy"
    say "import contract (imports run downhill: geoservice -> maps -> analyses -> layers -> core)"
    "$VENV/bin/lint-imports"
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
