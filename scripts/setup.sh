#!/usr/bin/env bash
# Set up everything slidesvc needs on a Debian/Ubuntu machine, idempotently.
#   scripts/setup.sh          runtime: Pango for WeasyPrint, fonts, a Python venv in .venv
#   scripts/setup.sh --test   also what the test suite drives: Chromium, poppler,
#                             wrk, nginx (containers: scripts/container-setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

packages=(libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core python3-venv)
if [ "$want_test" = 1 ]; then
  packages+=(chromium poppler-utils wrk nginx-light)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Debian's own python3 (an optimised build) when it is new enough; else python3 on PATH.
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  if /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    PYTHON=/usr/bin/python3
  fi
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
extra=""; [ "$want_test" = 1 ] && extra="[test]"
.venv/bin/python -m pip install -q -e ".${extra}" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/slidesvc --version >/dev/null
