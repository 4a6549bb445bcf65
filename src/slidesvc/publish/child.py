"""The entry point of one deck process started by the publisher.

It is `slidesvc serve` with one addition: on Linux the process asks the
kernel (``prctl(PR_SET_PDEATHSIG, SIGTERM)``) to be sent SIGTERM when the
publisher dies, however it dies (even SIGKILL), so no deck process outlives
its publisher. Arming the signal races with the publisher's death, so the
process then checks that its parent is still the publisher and leaves if not.
Arguments are those of `slidesvc serve`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from slidesvc.publish.settings import PUBLISHER_PID_ENV

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Arm the parent-death signal; False when the publisher is already gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    expected = os.environ.get(PUBLISHER_PID_ENV, "")
    return not expected.isdigit() or os.getppid() == int(expected)


def main(argv: list[str] | None = None) -> int:
    if not die_with_parent():
        return 0
    from slidesvc.cli import main as cli_main

    return cli_main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
