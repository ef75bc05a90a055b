#!/usr/bin/env bash
# Benchmarks of the kernel on this machine: start-up time to ready, idle RSS, throughput and
# latency of GET /health/live and of a 404 problem+json under wrk, then the event pipeline
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
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start=$(date +%s%N)
BASALT__SERVER__PORT=$port BASALT__RATE_LIMIT__ENABLED=false BASALT__LOG__FILTER=warn \
  ./target/release/basalt serve >/dev/null 2>&1 &
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
kill $pid; wait $pid 2>/dev/null || true

kport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TANSU_BIN" broker --listener-url "tcp://127.0.0.1:$kport" --advertised-listener-url "tcp://127.0.0.1:$kport" \
  --storage-engine memory://tansu/ >/dev/null 2>&1 &
broker=$!
wait_port "$kport" 20
psql "$ADMIN_DATABASE_URL" -qc "drop database if exists ${db}_events" >/dev/null
BENCH_DATABASE_URL=$(ensure_database "${db}_events") KAFKA_BROKERS="127.0.0.1:$kport" \
  BASALT__LOG__FILTER=error cargo bench --quiet --bench events
