"""The Stripe webhook benchmark's events (scripts/bench.sh, BENCH_ONLY=webhooks); stdlib only.

events SECRET N   writes N lines "<Stripe-Signature>\t<body>": a `payment_intent.succeeded`
                  of 1000 (USD cents) for `pi_bench_<n>` (scripts/bench/webhooks.sql), each
                  with its own event id, signed as Stripe signs them (HMAC-SHA256 of
                  "{t}.{body}" with the endpoint's secret, t = now: valid for 300 s).
"""

import hashlib
import hmac
import json
import sys
import time


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


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "events":
        events(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
