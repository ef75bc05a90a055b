#!/usr/bin/env bash
# Benchmarks on this machine: start-up time to ready, idle RSS, throughput and latency of
# GET /health/live and of a 404 problem+json under wrk, logins and token-verified GET /me
# (with and without Redis revocation checks), storage (1 GiB up and down, small files,
# image variants), the database domain with a million documents, then the event pipeline
# (benches/events.rs: outbox -> subscriber latency, events/s relayed to Kafka through tansu),
# the catalog at 1,000,000 products (BENCH_ONLY=catalog runs only that), the cart
# (BENCH_ONLY=cart), checkout (BENCH_ONLY=checkout), Stripe webhooks (BENCH_ONLY=webhooks)
# and notifications.
# Results go to stdout; docs/benchmarks.md records them with the machine they came from.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
ensure_postgres
case "${BENCH_ONLY:-}" in catalog|cart|checkout|webhooks) ;; *) ensure_tansu ;; esac
pid=""; broker=""
command -v wrk >/dev/null || apt_install wrk

db="basalt_bench"
psql "$ADMIN_DATABASE_URL" -qc "drop database if exists $db" >/dev/null
DATABASE_URL=$(ensure_database "$db")
export DATABASE_URL

# BENCH_BIN: a binary built elsewhere (target directories shared between worktrees); then
# nothing is built here.
[ -n "${BENCH_BIN:-}" ] || cargo build --release --quiet --bins ${BENCH_CARGO_ARGS:-}
BIN="${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/basalt}"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# Catalog (issue 13): 1,000,000 products with 3 variants each, generated in SQL
# (scripts/bench/catalog.sql), then under wrk: a product by id and by slug, a search of one
# word with one filter and its facets, a category page 100 deep by keyset, and stock
# reservations by 64 clients on 100 hot SKUs. BENCH_ONLY=catalog runs only this.
bench_catalog() {
  local cdb="${db}_catalog" url cpid api token id t0
  # BENCH_CATALOG_REUSE=1 measures again on the data a previous run generated.
  [ "${BENCH_CATALOG_REUSE:-}" = 1 ] || psql "$ADMIN_DATABASE_URL" -qc "drop database if exists $cdb" >/dev/null
  url=$(ensure_database "$cdb")
  DATABASE_URL=$url BASALT__SERVER__PORT=$port BASALT__RATE_LIMIT__ENABLED=false BASALT__LOG__FILTER=warn \
    "$BIN" serve >/dev/null 2>&1 &
  cpid=$!
  until curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.05; done
  if [ "$(psql "$url" -qAtc "select count(*) from catalog.products")" != 1000000 ]; then
    t0=$(date +%s)
    psql "$url" -q -f scripts/bench/catalog.sql >/dev/null
    echo "--- catalog: 1,000,000 products, 3,000,000 variants generated and indexed in $(( $(date +%s) - t0 )) s"
  fi
  echo "--- catalog: $(psql "$url" -qAtc "select pg_size_pretty(pg_total_relation_size('catalog.products'))") of products with their indexes"
  api="http://127.0.0.1:$port/api/v1/catalog"
  id=$(psql "$url" -qAtc "select id from catalog.products where slug = 'product-500000'")
  local w="wrk -t2 -c$CONNECTIONS -d$DURATION --latency"
  local keep='Requests/sec|Non-2xx|^ +(50|90|99)%'
  echo "--- GET /products/{id} (one statement: product + variants + stock)"
  $w "$api/products/$id" | grep -E "$keep"
  echo "--- GET /products/by-slug/{slug}"
  $w "$api/products/by-slug/product-500000" | grep -E "$keep"
  echo "--- GET /products?q=lamp&category=category-3 (one word, one filter, relevance, total + facets)"
  curl -fsS "$api/products?q=lamp&category=category-3" \
    | python3 -c 'import json,sys; b=json.load(sys.stdin); print("    total:", b["total"], "items:", len(b["items"]), "facets:", {k: len(v) for k, v in b["facets"].items()})'
  $w "$api/products?q=lamp&category=category-3" | grep -E "$keep"
  # At 64 connections two cores are throughput-bound; latency is read at 16, 4 and 1.
  for c in 16 4 1; do
    echo "--- the same at $c connection(s)"
    wrk -t1 -c$c -d"$DURATION" --latency "$api/products?q=lamp&category=category-3" | grep -E "$keep"
  done
  echo "--- GET /products?category=category-57, page 100 (keyset, newest first, 25 a page)"
  local deep
  deep=$(python3 - "$api" <<'PY'
import json, sys, urllib.request
api, after = sys.argv[1], None
for _ in range(99):
    url = f"{api}/products?category=category-57" + (f"&after={after}" if after else "")
    after = json.load(urllib.request.urlopen(url))["next"]
print(f"{api}/products?category=category-57&after={after}")
PY
)
  $w "$deep" | grep -E "$keep"
  for c in 16 4 1; do
    echo "--- the same at $c connection(s)"
    wrk -t1 -c$c -d"$DURATION" --latency "$deep" | grep -E "$keep"
  done

  # Reservations: an administrator (holds catalog.stock.reserve) reserving 1 unit of one of
  # 100 hot SKUs per request, 64 connections.
  curl -fsS -o /dev/null -H 'content-type: application/json' "http://127.0.0.1:$port/api/v1/auth/register" \
    -d '{"email":"stock@example.com","password":"correct horse battery staple","first_name":"S","last_name":"B"}' || true
  psql "$url" -qc "insert into auth.user_roles (user_id, role)
                   select id, 'admin' from auth.users where email = 'stock@example.com'
                   on conflict do nothing" >/dev/null
  token=$(curl -fsS -H 'content-type: application/json' "http://127.0.0.1:$port/api/v1/auth/login" \
    -d '{"email":"stock@example.com","password":"correct horse battery staple"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  local lua=/var/tmp/basalt-bench-reserve.lua
  {
    echo "-- POST /inventory/{variant}/reservations on 100 hot variants (generated by scripts/bench.sh)"
    echo "local ids = {"
    psql "$url" -qAtc "select '\"' || id || '\",' from catalog.variants order by sku limit 100"
    echo "}"
    echo 'wrk.method = "POST"'
    echo 'wrk.headers["Content-Type"] = "application/json"'
    echo "wrk.headers[\"Authorization\"] = \"Bearer $token\""
    echo 'wrk.body = "{\"holder\":\"bench\",\"quantity\":1,\"ttl_secs\":600}"'
    echo 'request = function() return wrk.format(nil, "/api/v1/catalog/inventory/" .. ids[math.random(#ids)] .. "/reservations") end'
  } > "$lua"
  echo "--- POST /inventory/{variant}/reservations, 64 connections, 100 hot variants"
  wrk -t2 -c64 -d"$DURATION" --latency -s "$lua" "http://127.0.0.1:$port" | grep -E "$keep"
  echo "    reserved in total: $(psql "$url" -qAtc "select sum(reserved) from catalog.stock")," \
    "holds: $(psql "$url" -qAtc "select count(*) from catalog.reservations")"
  kill $cpid; wait $cpid 2>/dev/null || true
}

# Cart (issue 14): GET /cart of a signed-in shopper whose cart holds 10 lines, each priced
# again on every read (two statements: the cart with its lines and discount, then the
# catalog's current data), at 64 and 1 connections. The products are written in SQL.
bench_cart() {
  local cdb="${db}_cart" url cpid token uid
  psql "$ADMIN_DATABASE_URL" -qc "drop database if exists $cdb" >/dev/null
  url=$(ensure_database "$cdb")
  DATABASE_URL=$url BASALT__SERVER__PORT=$port BASALT__RATE_LIMIT__ENABLED=false BASALT__LOG__FILTER=warn \
    "$BIN" serve >/dev/null 2>&1 &
  cpid=$!
  until curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.05; done
  curl -fsS -o /dev/null -H 'content-type: application/json' "http://127.0.0.1:$port/api/v1/auth/register" \
    -d '{"email":"cart@example.com","password":"correct horse battery staple","first_name":"C","last_name":"B"}'
  token=$(curl -fsS -H 'content-type: application/json' "http://127.0.0.1:$port/api/v1/auth/login" \
    -d '{"email":"cart@example.com","password":"correct horse battery staple"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  uid=$(psql "$url" -qAtc "select id from auth.users where email = 'cart@example.com'")
  psql "$url" -q -v uid="$uid" >/dev/null <<'SQL'
WITH p AS (
    INSERT INTO catalog.products (id, seller_id, title, slug, status, currency, published_at)
    SELECT gen_random_uuid(), gen_random_uuid(), 'Product ' || i, 'cart-bench-' || i, 'active', 'USD', now()
      FROM generate_series(1, 10) i RETURNING id
), v AS (
    INSERT INTO catalog.variants (id, product_id, title, price)
    SELECT gen_random_uuid(), id, 'Default', 1999 FROM p RETURNING id, price
), s AS (
    INSERT INTO catalog.stock (variant_id, on_hand) SELECT id, 1000 FROM v
), c AS (
    INSERT INTO cart.carts (id, user_id, currency) VALUES (gen_random_uuid(), :'uid', 'USD') RETURNING id
)
INSERT INTO cart.lines (id, cart_id, variant_id, quantity, unit_price)
SELECT gen_random_uuid(), c.id, v.id, 2, v.price FROM c, v;
SQL
  curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/cart" \
    | python3 -c 'import json,sys; b=json.load(sys.stdin); print("    lines:", len(b["lines"]), "total:", b["totals"]["total"])'
  local keep='Requests/sec|Non-2xx|^ +(50|90|99)%'
  echo "--- GET /cart, 10 lines, $CONNECTIONS connections"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$port/api/v1/cart" | grep -E "$keep"
  echo "--- GET /cart, 10 lines, 1 connection"
  wrk -t1 -c1 -d"$DURATION" --latency -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$port/api/v1/cart" | grep -E "$keep"
  kill $cpid; wait $cpid 2>/dev/null || true
}

# Checkout (issue 14): POST /orders of 3-line carts (stock reserved for each line, the order
# with its per-seller parts and lines, `order.created` in the outbox, the cart completed and
# the idempotent response stored: one transaction) at 1, 16 and 64 clients, each request
# another shopper's cart; then 200 checkouts at once of carts holding the last 50 units of
# one variant. Shoppers, carts, products and stock are written in SQL (scripts/bench/
# checkout.sql); access tokens are minted with the server's secret (scripts/bench/
# checkout.py); wrk walks the (token, cart) list (scripts/wrk/checkout.lua). Afterwards SQL
# checks that the orders are the 201s, each has its event, and stock never went negative.
bench_checkout() {
  local cdb="${db}_checkout" url cpid secret lua=scripts/wrk/checkout.lua list c t n out
  local per_level=${BENCH_CHECKOUT_CARTS:-20000} created=0 late=0 before after orders
  # The server's warnings and errors: a 500 under load is a finding, not noise.
  local log=/var/tmp/basalt-bench-checkout.log
  psql "$ADMIN_DATABASE_URL" -qc "drop database if exists $cdb" >/dev/null
  url=$(ensure_database "$cdb")
  secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  # The default pool (20 connections); a longer wait for one, so 200 checkouts at once queue
  # for the pool instead of failing after its 5 s default.
  DATABASE_URL=$url BASALT__SERVER__PORT=$port BASALT__RATE_LIMIT__ENABLED=false BASALT__LOG__FILTER=warn \
    BASALT__IDENTITY__JWT_SECRET=$secret BASALT__DATABASE__ACQUIRE_TIMEOUT_SECS=60 \
    "$BIN" serve >"$log" 2>&1 &
  cpid=$!
  until curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.05; done
  t=$(date +%s)
  psql "$url" -q -v carts=$((3 * per_level)) -f scripts/bench/checkout.sql >/dev/null
  echo "--- checkout: $((3 * per_level)) shoppers with a 3-line cart written in $(( $(date +%s) - t )) s"
  list=/var/tmp/basalt-bench-checkout.txt
  local level=0
  for c in 1 16 64; do
    t=2; [ "$c" = 1 ] && t=1
    # Each run its own slice of shoppers, so no cart is sent twice, not even one whose
    # checkout wrk abandoned at the previous run's deadline (its transaction may still hold
    # the key: a 409 idempotency_key_in_flight would be right, and not what is measured).
    psql "$url" -qAt -F' ' -c "select user_id, id from cart.carts
                                where email like 'shopper-%'
                                  and split_part(split_part(email, '@', 1), '-', 2)::int / $per_level = $level" \
      | python3 scripts/bench/checkout.py tokens "$secret" > "$list"
    level=$((level + 1))
    echo "--- POST /orders, 3 lines, $c client(s)"
    before=$(psql "$url" -qAtc "select count(*) from orders.orders")
    out=$(wrk -t"$t" -c"$c" -d"$DURATION" --timeout 30s --latency -s "$lua" \
      "http://127.0.0.1:$port" -- "$list" "$t")
    echo "$out" | grep -E 'Requests/sec|Non-2xx|Socket errors|^ +(50|90|99)%|checkouts:|WARNING'
    n=$(echo "$out" | sed -n 's/.*checkouts: \([0-9]*\) created.*/\1/p')
    created=$((created + n))
    # wrk stops at the deadline without reading the answers in flight (at most one per
    # client): those checkouts still commit, so the orders may exceed the 201s by up to $c.
    sleep 1
    after=$(psql "$url" -qAtc "select count(*) from orders.orders")
    echo "    orders made: $((after - before)) ($((after - before - n)) answered after wrk's deadline, at most $c:" \
      "$([ $((after - before - n)) -ge 0 ] && [ $((after - before - n)) -le "$c" ] && echo yes || echo NO))"
    late=$((late + after - before - n))
  done
  rm -f "$list"

  echo "--- 200 checkouts at once of the last 50 units of one variant"
  psql "$url" -qAt -F' ' -c "select user_id, id from cart.carts where email like 'last-fifty-%'" \
    | python3 scripts/bench/checkout.py contend "http://127.0.0.1:$port/api/v1/orders" "$secret"
  echo "    orders of it: $(psql "$url" -qAtc "select count(distinct order_id) from orders.order_lines l
                                              join catalog.variants v on v.id = l.variant_id
                                             where v.sku = 'CHK-LAST-50'")," \
    "its stock (on_hand, reserved): $(psql "$url" -qAtc "select on_hand || ', ' || reserved from catalog.stock s
                                                         join catalog.variants v on v.id = s.variant_id
                                                        where v.sku = 'CHK-LAST-50'")"

  # Checks: every 201 is one order (50 more from the contention run) with one order.created,
  # and no variant's availability (on hand minus reserved) went below zero at any movement.
  orders=$(psql "$url" -qAtc "select count(*) from orders.orders")
  echo "--- checks: orders $orders = 201s under wrk $created + after its deadlines $late + 50:" \
    "$([ "$orders" = $((created + late + 50)) ] && echo yes || echo NO)," \
    "order.created events $(psql "$url" -qAtc "select count(*) from platform.outbox where event_type = 'order.created'")," \
    "lowest availability $(psql "$url" -qAtc "
      select min(s.on_hand - t.total_on + m.run_on - m.run_res)
        from (select variant_id, sum(on_hand_delta) over w as run_on, sum(reserved_delta) over w as run_res
                from catalog.stock_movements window w as (partition by variant_id order by id)) m
        join catalog.stock s using (variant_id)
        join (select variant_id, sum(on_hand_delta) as total_on from catalog.stock_movements
               group by variant_id) t using (variant_id)"), rows with reserved > on_hand" \
    "$(psql "$url" -qAtc "select count(*) from catalog.stock where reserved > on_hand or on_hand < 0")"
  echo "    server log ($log): $(grep -c ERROR "$log" || true) errors, $(grep -c WARN "$log" || true) warnings"
  kill $cpid; wait $cpid 2>/dev/null || true
}

# Stripe webhooks (issue 15): POST /orders/webhooks/stripe of `payment_intent.succeeded`
# events, each another event for another open payment (scripts/bench/webhooks.sql,
# scripts/bench/webhooks.py signs them as Stripe does, scripts/wrk/stripe_webhook.lua walks
# them): what is measured is the signature check on the raw body and the one statement that
# records the event with its outbox event. Then how long the orders subscriber takes to
# apply them all (lock the order and the payment, the transition, the `captured` ledger row,
# `payment.succeeded`, `settle` with `order.paid`), and SQL checks one ledger row each.
# Before that, POST /orders/{id}/payment one at a time against localstripe (the Stripe fake
# the tests use; each opens a PaymentIntent there): its latency percentiles.
bench_webhooks() {
  local wdb="${db}_webhooks" url wpid spid list out n t0 applied=0 secret=whsec_bench
  local events=${BENCH_WEBHOOK_EVENTS:-60000} c=${BENCH_WEBHOOK_CONNECTIONS:-32}
  local starts=${BENCH_PAYMENT_STARTS:-500} jwt sport
  local log=/var/tmp/basalt-bench-webhooks.log
  ensure_python_tools
  psql "$ADMIN_DATABASE_URL" -qc "drop database if exists $wdb" >/dev/null
  url=$(ensure_database "$wdb")
  jwt=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$BASALT_STATE_DIR/venv/bin/python" -m localstripe --port "$sport" --from-scratch >/dev/null 2>&1 &
  spid=$!
  DATABASE_URL=$url BASALT__SERVER__PORT=$port BASALT__RATE_LIMIT__ENABLED=false BASALT__LOG__FILTER=warn \
    BASALT__IDENTITY__JWT_SECRET=$jwt \
    BASALT__ORDERS__STRIPE__SECRET_KEY=sk_test_bench BASALT__ORDERS__STRIPE__WEBHOOK_SECRET=$secret \
    BASALT__ORDERS__STRIPE__BASE_URL=http://127.0.0.1:$sport \
    "$BIN" serve >"$log" 2>&1 &
  wpid=$!
  until curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.05; done
  until curl -fs -o /dev/null "http://127.0.0.1:$sport/js.stripe.com/v3/"; do sleep 0.1; done
  psql "$url" -q -v payments="$events" -v starts="$starts" -f scripts/bench/webhooks.sql >/dev/null
  echo "--- POST /orders/{id}/payment (Stripe, against localstripe), 1 client"
  psql "$url" -qAt -F' ' -c "select user_id, id from orders.orders where number like 'BS-START%'" \
    | python3 scripts/bench/webhooks.py starts "http://127.0.0.1:$port/api/v1/orders" "$jwt"
  list=/var/tmp/basalt-bench-webhooks.txt
  python3 scripts/bench/webhooks.py events "$secret" "$events" > "$list"
  echo "--- POST /orders/webhooks/stripe, $c clients, each a new signed event ($events ready)"
  t0=$(date +%s%N)
  out=$(wrk -t2 -c"$c" -d"$DURATION" --latency -s scripts/wrk/stripe_webhook.lua \
    "http://127.0.0.1:$port" -- "$list" 2)
  echo "$out" | grep -E 'Requests/sec|Non-2xx|Socket errors|^ +(50|90|99)%|webhooks:|WARNING'
  n=$(psql "$url" -qAtc "select count(*) from orders.provider_events")
  # The subscriber works behind the webhook: wait until every recorded event is applied.
  until [ "$(psql "$url" -qAtc "select count(*) from orders.provider_events where outcome = 'pending'")" = 0 ]; do
    sleep 0.2
  done
  applied=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "    $n events recorded; all applied $applied ms after the first was sent" \
    "($(( n * 1000 / (applied > 0 ? applied : 1) )) applied/s overall)"
  echo "--- checks: ledger rows $(psql "$url" -qAtc "select count(*) from orders.payment_ledger") = events $n," \
    "paid orders $(psql "$url" -qAtc "select count(*) from orders.orders where status = 'paid'")," \
    "order.paid events $(psql "$url" -qAtc "select count(*) from platform.outbox where event_type = 'order.paid'")"
  echo "    server log ($log): $(grep -c ERROR "$log" || true) errors, $(grep -c WARN "$log" || true) warnings"
  rm -f "$list"
  kill $wpid $spid; wait $wpid $spid 2>/dev/null || true
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(lscpu | sed -n 's/^Model name: *//p')"
if [ "${BENCH_ONLY:-}" = catalog ]; then
  bench_catalog
  exit 0
fi
if [ "${BENCH_ONLY:-}" = cart ]; then
  bench_cart
  exit 0
fi
if [ "${BENCH_ONLY:-}" = checkout ]; then
  bench_checkout
  exit 0
fi
if [ "${BENCH_ONLY:-}" = webhooks ]; then
  bench_webhooks
  exit 0
fi
start=$(date +%s%N)
BASALT__SERVER__PORT=$port BASALT__RATE_LIMIT__ENABLED=false BASALT__LOG__FILTER=warn \
  "$BIN" serve >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; kill $broker 2>/dev/null || true' EXIT
until curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.01; done
ready=$(date +%s%N)
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

bench_catalog
bench_cart
bench_checkout
bench_webhooks

# Notifications: emails to a local SMTP sink (aiosmtpd), webhooks to a local receiver.
ensure_python_tools
psql "$ADMIN_DATABASE_URL" -qc "drop database if exists ${db}_notifications" >/dev/null
BENCH_DATABASE_URL=$(ensure_database "${db}_notifications") BENCH_SMTP_URL=smtp://127.0.0.1:2525 \
  cargo bench --quiet --bench notifications
