"""``python -m slidesvc.server --artifacts DIR``: what a deck's container image runs.

The same service as `slidesvc serve --artifacts DIR`, reached without the
command-line module, so the image needs aiohttp, the standard library and
slidesvc's artifacts/errors modules, nothing of the build side.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from slidesvc.errors import SlidesvcError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slidesvc.server",
        description="Serve one deck's prebuilt artifact folder.",
        epilog="Exit codes: 0 stopped by a signal, 1 cannot start (bad folder, port in use), "
        "2 usage.",
    )
    parser.add_argument("--artifacts", required=True, metavar="DIR")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--public-url", default=None)
    parser.add_argument("--embed-origin", action="append", default=[], metavar="ORIGIN")
    parser.add_argument("--presenter-token", default=None)
    parser.add_argument("--watch", action="store_true")
    args = parser.parse_args(argv)
    args.source = None
    from slidesvc.server.run import serve_from_args

    try:
        return serve_from_args(args, os.environ)
    except SlidesvcError as exc:
        print(f"slidesvc: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
