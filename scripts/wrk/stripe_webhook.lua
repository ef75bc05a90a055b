-- POST /api/v1/orders/webhooks/stripe, each request another signed event (scripts/bench.sh,
-- BENCH_ONLY=webhooks). Arguments after `--`: a file of "<Stripe-Signature>\t<body>" lines
-- (scripts/bench/webhooks.py) and the number of wrk threads; thread i takes lines i, i + n,
-- i + 2n, ... so no event is sent twice. Counts 200s and anything else; a thread that runs
-- out of events stops (and says so) rather than send one twice (a duplicate is cheaper).

local threads, next_id = {}, 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local events, i = {}, 0
ok, other, exhausted = 0, 0, 0

function init(args)
  local n, line_no = tonumber(args[2]), 0
  for line in io.lines(args[1]) do
    if line_no % n == id then
      local sig, body = line:match("^([^\t]+)\t(.*)$")
      table.insert(events, { sig, body })
    end
    line_no = line_no + 1
  end
end

function request()
  i = i + 1
  local e = events[i]
  if e == nil then
    exhausted = 1
    wrk.thread:stop()
    return wrk.format("GET", "/health/live")
  end
  return wrk.format("POST", "/api/v1/orders/webhooks/stripe", {
    ["Content-Type"] = "application/json",
    ["Stripe-Signature"] = e[1],
  }, e[2])
end

function response(status, headers, body)
  if exhausted == 1 then return end
  if status == 200 then
    ok = ok + 1
  else
    other = other + 1
    if other <= 3 then io.stderr:write("webhook: " .. status .. " " .. body .. "\n") end
  end
end

function done(summary, latency, requests)
  local o, x, e = 0, 0, 0
  for _, t in ipairs(threads) do
    o, x, e = o + t:get("ok"), x + t:get("other"), e + t:get("exhausted")
  end
  io.write(string.format("    webhooks: %d recorded (200), %d other\n", o, x))
  if e > 0 then io.write("    WARNING: ran out of events; raise BENCH_WEBHOOK_EVENTS\n") end
end
