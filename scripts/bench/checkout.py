"""Helpers of the checkout benchmark (scripts/bench.sh, BENCH_ONLY=checkout); stdlib only.

tokens SECRET           reads "user_id cart_id" lines on stdin and writes "token cart_id"
                        lines: an HS256 access token per user, with the claims the server's
                        default identity settings check (issuer and audience "basalt"), as
                        tests/api/helpers.rs `TestApp::token` signs them. The server runs with
                        the same BASALT__IDENTITY__JWT_SECRET.
contend URL SECRET      reads "user_id cart_id" lines on stdin, sends all their checkouts at
                        once (one thread each, released together by a barrier) and prints the
                        wall time from release to the last answer and the statuses.
"""

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(secret: str, sub: str) -> str:
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({
        "sub": sub, "roles": ["user"], "permissions": [], "jti": str(uuid.uuid4()),
        "email_verified": True, "iat": now, "exp": now + 3600, "iss": "basalt", "aud": "basalt",
    }).encode())
    signing = f"{header}.{claims}".encode()
    sig = hmac.new(secret.encode(), signing, hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(sig)}"


def pairs():
    for line in sys.stdin:
        if line.strip():
            user, cart = line.split()
            yield user, cart


def contend(url: str, secret: str) -> None:
    jobs = [(token(secret, u), c) for u, c in pairs()]
    statuses: dict = {}
    codes: dict = {}
    lock = threading.Lock()
    barrier = threading.Barrier(len(jobs) + 1)

    def one(tok: str, cart: str) -> None:
        req = urllib.request.Request(
            url, method="POST",
            data=json.dumps({"cart_id": cart, "payment_provider": "manual"}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {tok}",
                     "Idempotency-Key": f"contend-{cart}"})
        barrier.wait()
        try:
            with urllib.request.urlopen(req, timeout=120) as res:
                status, code = res.status, None
        except urllib.error.HTTPError as e:
            status = e.code
            try:
                code = json.load(e).get("code")
            except ValueError:
                code = None
        with lock:
            statuses[status] = statuses.get(status, 0) + 1
            if code:
                codes[code] = codes.get(code, 0) + 1

    threads = [threading.Thread(target=one, args=j) for j in jobs]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    print(f"    {len(jobs)} checkouts at once: wall {wall * 1000:.0f} ms, statuses {dict(sorted(statuses.items()))}, "
          f"refusals {codes}")


def main() -> None:
    if sys.argv[1] == "tokens":
        for u, c in pairs():
            print(token(sys.argv[2], u), c)
    elif sys.argv[1] == "contend":
        contend(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
