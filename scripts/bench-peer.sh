#!/usr/bin/env bash
# Side by side with the Node peer (../shared/peers/fastify-pg, Fastify + pg + a JWT check, two
# cluster workers): both against the same PostgreSQL cluster (separate databases), each seeded
# with 100,000 rows, each driven by the peer's own bench.sh (wrk, 64 connections, 5 s warm-up,
# 20 s): health, read one row by id with a JWT, write one row and its outbox event; for Basalt
# also GET /api/v1/auth/me. Prints both tables and Basalt's RSS idle and after the run.
#
#   PEER_DIR   the peer's sources (default /work/shared/peers/fastify-pg); copied to a temp
#              dir and installed there with `npm ci` (nothing of it is kept in this repo)
#   DURATION / WARMUP / CONNECTIONS   passed to the peer's bench.sh
#   SKIP_PEER=1                       Basalt only
#   BASALT_BIN                        a release binary to run instead of building one
#   SPLIT_SECONDS / SPLIT_MODE        length and kind (read or write) of the extra run of each
#                                     server during which scripts/bench/cpu_split.py reads where
#                                     the box's CPU goes (default 12 s of reads)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

PEER_DIR=${PEER_DIR:-/work/shared/peers/fastify-pg}
export DURATION=${DURATION:-20s} WARMUP=${WARMUP:-5s} CONNECTIONS=${CONNECTIONS:-64}
SPLIT_SECONDS=${SPLIT_SECONDS:-12} SPLIT_MODE=${SPLIT_MODE:-read}
repo=$PWD
ensure_postgres
command -v wrk >/dev/null || apt_install wrk
command -v node >/dev/null || { echo "node (20+) is needed for the peer" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss() { awk '/VmRSS/{printf "%.1f MiB", $2/1024}' "/proc/$1/status"; }
# The peer's ids (seed.sql): item i is 00000000-0000-4000-8000-<i as 12 hex digits>.
seq 1 100000 | awk '{ printf "00000000-0000-4000-8000-%012x\n", $1 }' > "$work/ids.txt"

echo "# machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(lscpu | sed -n 's/^Model name: *//p'); $(psql "$ADMIN_DATABASE_URL" -Atc 'show server_version' | cut -d' ' -f1) PostgreSQL; node $(node --version); $(date -u +%Y-%m-%dT%H:%M:%SZ)"

# --- the peer -------------------------------------------------------------------------------
if [ "${SKIP_PEER:-}" != 1 ]; then
  cp -r "$PEER_DIR" "$work/peer"
  rm -rf "$work/peer/node_modules"
  (cd "$work/peer" && npm ci --silent --no-audit --no-fund >/dev/null 2>&1)
  psql "$ADMIN_DATABASE_URL" -qc "drop database if exists basalt_bench_peer" >/dev/null
  peer_db=$(ensure_database basalt_bench_peer)
  export JWT_SECRET=peer-bench-secret-change-me
  (cd "$work/peer" && DATABASE_URL=$peer_db node seed.js)
  peer_port=$(free_port)
  (cd "$work/peer" && PORT=$peer_port DATABASE_URL=$peer_db exec node server.js) >/dev/null 2>&1 &
  pids+=($!)
  peer_pid=$!
  until curl -fs "http://127.0.0.1:$peer_port/health/live" >/dev/null; do sleep 0.1; done
  echo
  echo "## peer (fastify-pg, $(nproc) workers)"
  (cd "$work/peer" && TOKEN=$(node token.js) BASE_URL=http://127.0.0.1:$peer_port IDS_FILE=$work/ids.txt ./bench.sh | grep -v '^#')
  echo
  echo "Where the box's CPU went during a ${SPLIT_SECONDS}s $SPLIT_MODE run (scripts/bench/cpu_split.py):"
  echo
  (cd "$work/peer" && TOKEN=$(node token.js) BENCH_MODE=$SPLIT_MODE IDS_FILE=$work/ids.txt READ_PATH_PREFIX=/items/ \
     python3 "$repo/scripts/bench/cpu_split.py" "$peer_pid" -- wrk -t2 -c"$CONNECTIONS" -d"${SPLIT_SECONDS}s" \
       -s ./bench.lua "http://127.0.0.1:$peer_port")
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
fi

# --- Basalt ---------------------------------------------------------------------------------
if [ -z "${BASALT_BIN:-}" ]; then
  cargo build --release --quiet --bins --all-features
  BASALT_BIN="${CARGO_TARGET_DIR:-target}/release/basalt"
fi
BIN=$BASALT_BIN
psql "$ADMIN_DATABASE_URL" -qc "drop database if exists basalt_bench_side" >/dev/null
db_url=$(ensure_database basalt_bench_side)
port=$(free_port)
DATABASE_URL=$db_url BASALT__SERVER__PORT=$port BASALT__RATE_LIMIT__ENABLED=false \
  BASALT__LOG__FILTER=warn "$BIN" serve >/dev/null 2>&1 &
pids+=($!)
pid=${pids[-1]}
until curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.05; done
base="http://127.0.0.1:$port/api/v1"
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
curl -fsS -o /dev/null -H 'content-type: application/json' "$base/auth/register" \
  -d '{"email":"bench@example.com","password":"correct horse battery staple","first_name":"B","last_name":"M"}'
token=$(curl -fsS -H 'content-type: application/json' "$base/auth/login" \
  -d '{"email":"bench@example.com","password":"correct horse battery staple"}' | json '["access_token"]')
auth=(-H "Authorization: Bearer $token" -H 'content-type: application/json')
dbid=$(curl -fsS "${auth[@]}" "$base/databases" -d '{"name":"bench"}' | json '["id"]')
curl -fsS -o /dev/null "${auth[@]}" "$base/databases/$dbid/collections" -d '{
  "id": "items", "name": "Items", "permissions": {"read": ["users"], "create": ["users"]},
  "attributes": [
    {"key": "name", "type": "string", "size": 200, "required": true},
    {"key": "price_minor", "type": "integer", "required": true},
    {"key": "currency", "type": "string", "size": 3, "required": true},
    {"key": "data", "type": "json"}]}'
# 100,000 documents with the peer's ids and row shapes, straight into the collection's table
# (through the API they would also queue 100,000 events for the relay during the run).
table=$(psql "$db_url" -Atc "select 'baas.\"d_' || replace(id::text, '-', '') || '\"' from baas.collections where key = 'items'")
psql "$db_url" -qc "insert into $table (id, data, perm_read, perm_update, perm_delete)
  select '00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'),
         jsonb_build_object('name', 'item ' || i, 'price_minor', 100 + (i * 37) % 100000,
           'currency', (array['EUR','USD','GBP'])[1 + i % 3],
           'data', jsonb_build_object('sku', 'SKU-' || lpad(i::text, 6, '0'))),
         '{}', '{}', '{}'
    from generate_series(1, 100000) i" >/dev/null
psql "$db_url" -qc "vacuum analyze $table" >/dev/null
sleep 2
idle=$(rss "$pid")
echo
echo "## Basalt (release, every feature, rate limiting off, log level warn)"
(cd "${work}/peer" 2>/dev/null || cd "$PEER_DIR"
 TOKEN=$token BASE_URL=http://127.0.0.1:$port NOAUTH_STATUS=404 IDS_FILE=$work/ids.txt \
   READ_PATH_PREFIX="/api/v1/databases/$dbid/collections/items/documents/" \
   WRITE_PATH="/api/v1/databases/$dbid/collections/items/documents" \
   WRITE_BODY='{"data":{"name":"bench widget","price_minor":1999,"currency":"EUR","data":{"source":"wrk"}}}' \
   ./bench.sh | grep -v '^#'
 echo me > "$work/me.txt"
 TOKEN=$token BASE_URL=http://127.0.0.1:$port IDS_FILE=$work/me.txt READ_PATH_PREFIX=/api/v1/auth/ \
   ONLY=read ./bench.sh | grep -v '^#' | tail -n1 | sed 's#GET /api/v1/auth/:id (JWT)  #GET /api/v1/auth/me (JWT)#')
echo
echo "Basalt RSS: idle $idle, after the run $(rss "$pid")"
echo
echo "Where the box's CPU went during a ${SPLIT_SECONDS}s document $SPLIT_MODE run (scripts/bench/cpu_split.py):"
echo
(cd "${work}/peer" 2>/dev/null || cd "$PEER_DIR"
 TOKEN=$token BENCH_MODE=$SPLIT_MODE IDS_FILE=$work/ids.txt \
   READ_PATH_PREFIX="/api/v1/databases/$dbid/collections/items/documents/" \
   WRITE_PATH="/api/v1/databases/$dbid/collections/items/documents" \
   WRITE_BODY='{"data":{"name":"bench widget","price_minor":1999,"currency":"EUR","data":{"source":"wrk"}}}' \
   python3 "$repo/scripts/bench/cpu_split.py" "$pid" -- \
     wrk -t2 -c"$CONNECTIONS" -d"${SPLIT_SECONDS}s" -s ./bench.lua "http://127.0.0.1:$port")
