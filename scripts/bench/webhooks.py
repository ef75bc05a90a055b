"""The Stripe benchmark's helpers (scripts/bench.sh, BENCH_ONLY=webhooks); stdlib only.

events SECRET N   writes N lines "<Stripe-Signature>\t<body>": a `payment_intent.succeeded`
                  of 1000 (USD cents) for `pi_bench_<n>` (scripts/bench/webhooks.sql), each
                  with its own event id, signed as Stripe signs them (HMAC-SHA256 of
                  "{t}.{body}" with the endpoint's secret, t = now: valid for 300 s).
starts URL SECRET reads "user_id order_id" lines on stdin and, one client, one request at a
                  time, POSTs URL/{order_id}/payment as the order's buyer (an HS256 token
                  signed with the server's secret, as scripts/bench/checkout.py signs them),
                  each opening a Stripe PaymentIntent at the fake; prints the statuses and
                  the latency percentiles.
"""

import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkout import token  # noqa: E402


def events(secret: str, n: int) -> None:
    t = int(time.time())
    out = sys.stdout
    for i in range(1, n + 1):
        body = json.dumps(
            {
                "id": f"evt_bench_{i}",
                "object": "event",
                "type": "payment_intent.succeeded",
                "created": t,
                "data": {
                    "object": {
                        "id": f"pi_bench_{i}",
                        "object": "payment_intent",
                        "amount": 1000,
                        "amount_received": 1000,
                        "currency": "usd",
                        "status": "succeeded",
                        "latest_charge": f"ch_bench_{i}",
                        "metadata": {},
                    }
                },
            },
            separators=(",", ":"),
        )
        sig = hmac.new(secret.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
        out.write(f"t={t},v1={sig}\t{body}\n")


def starts(url: str, secret: str) -> None:
    statuses: dict = {}
    took = []
    for line in sys.stdin:
        if not line.strip():
            continue
        user, order = line.split()
        req = urllib.request.Request(
            f"{url}/{order}/payment", method="POST",
            headers={"Authorization": f"Bearer {token(secret, user)}"})
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                status = res.status
                res.read()
        except urllib.error.HTTPError as e:
            status = e.code
        took.append(time.monotonic() - t0)
        statuses[status] = statuses.get(status, 0) + 1
    took.sort()

    def pct(p: float) -> str:
        return f"{took[min(len(took) - 1, int(p * len(took)))] * 1000:.1f}ms"

    print(f"    {len(took)} starts: statuses {statuses}; p50 {pct(0.5)}, p90 {pct(0.9)},"
          f" p99 {pct(0.99)}, max {took[-1] * 1000:.1f}ms")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "events":
        events(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "starts":
        starts(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
