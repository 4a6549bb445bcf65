"""Container health check: ``python3 -m slidesvc.healthcheck`` exits 0 when /healthz answers 200.

Images have no shell and no curl, so the ``HEALTHCHECK`` of the Dockerfile
and of `slidesvc image` runs this instead. It asks the service on
``127.0.0.1:$PORT`` (default 8080) and uses only the standard library.
"""

from __future__ import annotations

import http.client
import os
import sys


def check(port: int, timeout: float = 3.0) -> bool:
    """Whether the local service answers ``GET /healthz`` with 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def main() -> int:
    port = int(os.environ.get("SLIDESVC_PORT") or os.environ.get("PORT") or "8080")
    healthy = check(port)
    if not healthy:
        print(f"unhealthy: GET http://127.0.0.1:{port}/healthz failed", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
