# Shared by serve.sh, test.sh and bench.sh: finds, installs (Debian packages, crates, PyPI
# packages) and starts what Basalt needs, reusing anything already running. Sourced, not run.
# Everything it starts keeps its state under $BASALT_STATE_DIR, outside the checkout.

BASALT_STATE_DIR="${BASALT_STATE_DIR:-$HOME/.local/share/basalt-dev}"
mkdir -p "$BASALT_STATE_DIR"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || { say "apt-get not found: install $* yourself"; return 1; }
  if [ "$APT_UPDATED" = 0 ]; then
    as_root apt-get update -qq >&2
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >&2
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds
  local i
  for i in $(seq 1 $(( $2 * 10 ))); do port_open "$1" && return 0; sleep 0.1; done
  return 1
}

# Sets ADMIN_DATABASE_URL to a PostgreSQL superuser URL that works without a password:
# the given DATABASE_URL's server, a running local server with trust auth, or a throwaway
# trust-auth cluster of our own (installed from Debian's packages if missing).
ensure_postgres() {
  command -v psql >/dev/null || apt_install postgresql-client
  if [ -n "${TEST_DATABASE_URL:-}" ] && psql "$TEST_DATABASE_URL" -qAtc 'select 1' >/dev/null 2>&1; then
    ADMIN_DATABASE_URL="$TEST_DATABASE_URL"; return
  fi
  local default="postgres://postgres@127.0.0.1:5432/postgres"
  if psql "$default" -qAtc 'select 1' >/dev/null 2>&1; then
    ADMIN_DATABASE_URL="$default"; return
  fi
  # Not under $HOME: the postgres user must be able to reach it (root's home is 0700).
  local port=55432 dir="${BASALT_PG_DIR:-/var/tmp/basalt-postgres}"
  ADMIN_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  if psql "$ADMIN_DATABASE_URL" -qAtc 'select 1' >/dev/null 2>&1; then return; fi
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  if [ -z "$bin" ]; then
    say "Installing PostgreSQL (Debian package)"
    apt_install postgresql
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  fi
  say "Starting a private PostgreSQL on 127.0.0.1:$port ($dir)"
  id postgres >/dev/null 2>&1 || as_root useradd --system --home "$dir" postgres
  as_root mkdir -p "$dir"
  as_root chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_root runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
  fi
  as_root runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=400" start >/dev/null
}

# Creates database $1 on the admin server if missing and prints its URL.
ensure_database() {
  local name=$1
  if [ "$(psql "$ADMIN_DATABASE_URL" -qAtc "select 1 from pg_database where datname = '$name'")" != 1 ]; then
    psql "$ADMIN_DATABASE_URL" -qc "create database \"$name\"" >/dev/null
  fi
  echo "${ADMIN_DATABASE_URL%/*}/$name"
}

ensure_redis() {
  if command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; then return; fi
  command -v redis-server >/dev/null || { say "Installing Redis (Debian package)"; apt_install redis-server; }
  say "Starting Redis on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
    --dir "$BASALT_STATE_DIR" --logfile "$BASALT_STATE_DIR/redis.log"
  wait_port 6379 10
}

# The Kafka-protocol broker for tests: tansu, built from crates.io once (about 15 minutes).
ensure_tansu() {
  TANSU_BIN="$(command -v tansu || true)"
  [ -n "$TANSU_BIN" ] || TANSU_BIN="$HOME/.cargo/bin/tansu"
  if [ ! -x "$TANSU_BIN" ]; then
    say "Building the tansu Kafka-protocol broker (crates.io, once)"
    cargo install tansu@0.6.0 --locked --features dynostore >&2
  fi
  export TANSU_BIN
}

# Python test tools in a private venv: the SMTP sink and the S3-compatible server, the
# OpenAPI validator and Schemathesis (the API fuzzer).
ensure_python_tools() {
  local venv="$BASALT_STATE_DIR/venv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >/dev/null 2>&1 || { apt_install python3-venv python3-pip; python3 -m venv "$venv"; }
  fi
  if ! "$venv/bin/python" -c 'import aiosmtpd, moto.server, openapi_spec_validator, schemathesis, localstripe' 2>/dev/null; then
    say "Installing aiosmtpd, moto[server], openapi-spec-validator, schemathesis and localstripe (PyPI)"
    # localstripe: a stateful fake Stripe (PaymentIntents, refunds, signed webhooks) that
    # the orders tests start one of per test.
    "$venv/bin/pip" install -q aiosmtpd 'moto[server]' openapi-spec-validator 'schemathesis>=4.32,<5' 'localstripe>=1.15,<2' >&2
  fi
  export PATH="$venv/bin:$PATH"
  if ! port_open 2525; then
    nohup "$venv/bin/python" -m aiosmtpd -n -l 127.0.0.1:2525 >"$BASALT_STATE_DIR/smtp.log" 2>&1 &
  fi
  if ! port_open 9000; then
    nohup "$venv/bin/moto_server" -H 127.0.0.1 -p 9000 >"$BASALT_STATE_DIR/s3.log" 2>&1 &
  fi
  wait_port 2525 20 && wait_port 9000 30
  export TEST_SMTP_ADDR=127.0.0.1:2525 TEST_S3_ENDPOINT=http://127.0.0.1:9000
}
