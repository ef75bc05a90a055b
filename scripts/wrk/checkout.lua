-- POST /api/v1/orders, each request the checkout of another shopper's cart (scripts/bench.sh,
-- BENCH_ONLY=checkout). Arguments after `--`: a file of "token cart_id" lines and the number of
-- wrk threads; thread i takes lines i, i + n, i + 2n, ... so no cart is sent twice. The
-- Idempotency-Key is unique per cart, hence per request. Counts 201s and anything else per
-- thread; a thread that runs out of carts stops (and says so) rather than send one twice.

local threads, next_id = {}, 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local pairs_, i = {}, 0
created, other, exhausted = 0, 0, 0

function init(args)
  local n, line_no = tonumber(args[2]), 0
  for line in io.lines(args[1]) do
    if line_no % n == id then
      local token, cart = line:match("^(%S+) (%S+)$")
      table.insert(pairs_, { token, cart })
    end
    line_no = line_no + 1
  end
end

function request()
  i = i + 1
  local p = pairs_[i]
  if p == nil then
    exhausted = 1
    wrk.thread:stop()
    return wrk.format("GET", "/health/live")
  end
  return wrk.format("POST", "/api/v1/orders", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. p[1],
    ["Idempotency-Key"] = "bench-" .. p[2],
  }, '{"cart_id":"' .. p[2] .. '","payment_provider":"manual"}')
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  elseif exhausted == 0 then
    other = other + 1
    if other <= 3 then io.stderr:write("checkout: " .. status .. " " .. body .. "\n") end
  end
end

function done(summary, latency, requests)
  local c, o, e = 0, 0, 0
  for _, t in ipairs(threads) do
    c, o, e = c + t:get("created"), o + t:get("other"), e + t:get("exhausted")
  end
  io.write(string.format("    checkouts: %d created (201), %d other\n", c, o))
  if e > 0 then io.write("    WARNING: ran out of carts; raise BENCH_CHECKOUT_CARTS\n") end
end
