#!/usr/bin/env bash
# Set up, then publish every deck in decks/ (one process per deck) on 127.0.0.1:8000.
# Extra arguments go to `slidesvc publish` (e.g. --port 9000 --public-url https://talks.example.org/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/slidesvc publish decks --host 127.0.0.1 --port "${PORT:-8000}" "$@"
