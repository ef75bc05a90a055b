#!/usr/bin/env bash
# Benchmarks on this machine: start-up time to ready, idle RSS, throughput and latency of
# GET /health/live and of a 404 problem+json under wrk, logins and token-verified GET /me
# (with and without Redis revocation checks), storage (1 GiB up and down, small files,
# image variants), the database domain with a million documents, then the event pipeline
# (benches/events.rs: outbox -> subscriber latency, events/s relayed to Kafka through tansu).
# Results go to stdout; docs/benchmarks.md records them with the machine they came from.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
ensure_postgres
ensure_tansu
command -v wrk >/dev/null || apt_install wrk

db="basalt_bench"
psql "$ADMIN_DATABASE_URL" -qc "drop database if exists $db" >/dev/null
DATABASE_URL=$(ensure_database "$db")
export DATABASE_URL

cargo build --release --quiet --bins
BIN="${CARGO_TARGET_DIR:-target}/release/basalt"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start=$(date +%s%N)
BASALT__SERVER__PORT=$port BASALT__RATE_LIMIT__ENABLED=false BASALT__LOG__FILTER=warn \
  "$BIN" serve >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; kill $broker 2>/dev/null || true' EXIT
until curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.01; done
ready=$(date +%s%N)
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(lscpu | sed -n 's/^Model name: *//p')"
echo "start-up to ready (fresh database, migrations included): $(( (ready - start) / 1000000 )) ms"
sleep 2
echo "idle RSS: $(awk '/VmRSS/{print $2/1024 " MiB"}' /proc/$pid/status)"
for path in /health/live /api/v1/nothing-here; do
  echo "--- wrk -t2 -c$CONNECTIONS -d$DURATION GET $path"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$port$path" \
    | grep -E 'Requests/sec|Non-2xx|^ +(50|90|99)%'
done
echo "RSS after load: $(awk '/VmRSS/{print $2/1024 " MiB"}' /proc/$pid/status)"

# Auth: logins are bound by argon2id (m=19456 KiB, t=2, p=1) on the blocking pool.
base="http://127.0.0.1:$port/api/v1/auth"
curl -fsS -o /dev/null -H 'content-type: application/json' "$base/register" \
  -d '{"email":"bench@example.com","password":"correct horse battery staple","first_name":"B","last_name":"M"}'
echo "--- login, 1 client (about one argon2id verification each)"
wrk -t1 -c1 -d5s --latency -s scripts/wrk/login.lua "$base/login" | grep -E 'Requests/sec|^ +(50|99)%'
echo "--- login, 16 concurrent clients"
wrk -t2 -c16 -d"$DURATION" --latency -s scripts/wrk/login.lua "$base/login" | grep -E 'Requests/sec|Non-2xx|^ +(50|90|99)%'
token=$(curl -fsS -H 'content-type: application/json' "$base/login" \
  -d '{"email":"bench@example.com","password":"correct horse battery staple"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
echo "--- GET /api/v1/auth/me with a bearer token (verify + in-process revocation check + one query)"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $token" "$base/me" \
  | grep -E 'Requests/sec|Non-2xx|^ +(50|90|99)%'
kill $pid; wait $pid 2>/dev/null || true

# The same /me with Redis configured: every request also asks Redis whether the token was
# revoked. The difference is the cost of the shared revocation check.
ensure_redis
BASALT__SERVER__PORT=$port BASALT__RATE_LIMIT__ENABLED=false BASALT__LOG__FILTER=warn REDIS_URL=redis://127.0.0.1:6379 \
  "$BIN" serve >/dev/null 2>&1 &
pid=$!
until curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.01; done
echo "--- GET /api/v1/auth/me with Redis revocation checks"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $token" "$base/me" \
  | grep -E 'Requests/sec|Non-2xx|^ +(50|90|99)%'
kill $pid; wait $pid 2>/dev/null || true

# Storage: a 1 GiB upload and download through the release binary, the server's RSS sampled
# throughout (benches/storage.rs), small public files under wrk, image variants, and 20
# concurrent previews of a 10000x10000 PNG (peak RSS; issue #11).
storage_dir=/var/tmp/basalt-bench-storage
rm -rf "$storage_dir"
BASALT__SERVER__PORT=$port BASALT__RATE_LIMIT__ENABLED=false BASALT__LOG__FILTER=warn \
  BASALT__STORAGE__LOCAL_DIR=$storage_dir BASALT__STORAGE__QUOTA_BYTES_PER_USER=0 \
  "$BIN" serve >/dev/null 2>&1 &
pid=$!
until curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.01; done
token=$(curl -fsS -H 'content-type: application/json' "$base/login" \
  -d '{"email":"bench@example.com","password":"correct horse battery staple"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
BENCH_BASE_URL="http://127.0.0.1:$port" BENCH_TOKEN=$token BENCH_SERVER_PID=$pid cargo bench --quiet --bench storage
sbase="http://127.0.0.1:$port/api/v1/storage"
bucket=$(curl -fsS -H "Authorization: Bearer $token" -H 'content-type: application/json' "$sbase/buckets" \
  -d '{"name":"public","public":true}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
head -c 4096 /dev/urandom > /var/tmp/basalt-bench-small.bin
file=$(curl -fsS -H "Authorization: Bearer $token" -F file=@/var/tmp/basalt-bench-small.bin "$sbase/buckets/$bucket/files" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "--- GET a 4 KiB file from a public bucket (no token)"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$sbase/files/$file/download" | grep -E 'Requests/sec|Non-2xx|^ +(50|90|99)%'
kill $pid; wait $pid 2>/dev/null || true
rm -rf "$storage_dir"

# Databases: 1,000,000 documents in one collection (benches/databases.rs).
psql "$ADMIN_DATABASE_URL" -qc "drop database if exists ${db}_documents" >/dev/null
BENCH_DATABASE_URL=$(ensure_database "${db}_documents") cargo bench --quiet --bench databases

kport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TANSU_BIN" broker --listener-url "tcp://127.0.0.1:$kport" --advertised-listener-url "tcp://127.0.0.1:$kport" \
  --storage-engine memory://tansu/ >/dev/null 2>&1 &
broker=$!
wait_port "$kport" 20
psql "$ADMIN_DATABASE_URL" -qc "drop database if exists ${db}_events" >/dev/null
BENCH_DATABASE_URL=$(ensure_database "${db}_events") KAFKA_BROKERS="127.0.0.1:$kport" \
  BASALT__LOG__FILTER=error cargo bench --quiet --bench events

# Notifications: emails to a local SMTP sink (aiosmtpd), webhooks to a local receiver.
ensure_python_tools
psql "$ADMIN_DATABASE_URL" -qc "drop database if exists ${db}_notifications" >/dev/null
BENCH_DATABASE_URL=$(ensure_database "${db}_notifications") BENCH_SMTP_URL=smtp://127.0.0.1:2525 \
  cargo bench --quiet --bench notifications
