# Sourced by scripts/test and scripts/bench: makes sure HOMEVISIT_TEST_POSTGRES names a
# PostgreSQL server whose user may create databases. Unless it is set already, the system
# cluster is used: installed first when missing and we are root, started, and given a role.
if [ -z "${HOMEVISIT_TEST_POSTGRES:-}" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "Set HOMEVISIT_TEST_POSTGRES to a PostgreSQL URL whose user may create databases," >&2
    echo "or run this as root to have it install and start PostgreSQL." >&2
    exit 1
  fi
  if ! command -v pg_lsclusters >/dev/null 2>&1 || ! dpkg -s libpq-dev >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq postgresql libpq-dev >/dev/null
  fi
  read -r version cluster port status _ < <(pg_lsclusters --no-header | head -n 1)
  if [ "$status" != "online" ]; then
    pg_ctlcluster "$version" "$cluster" start
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 1
  done
  runuser -u postgres -- psql -q -p "$port" -c \
    "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'homevisit_test') THEN CREATE ROLE homevisit_test LOGIN CREATEDB PASSWORD 'homevisit_test'; END IF; END \$\$;"
  export HOMEVISIT_TEST_POSTGRES="postgres://homevisit_test:homevisit_test@127.0.0.1:$port/postgres"
fi

