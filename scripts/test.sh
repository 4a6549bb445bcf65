#!/usr/bin/env bash
# Set up everything the tests need (apt packages, .venv, Chromium, podman & co.),
# then lint, type-check and run the whole test suite. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
eval "$(scripts/container-setup.sh)"   # podman, skopeo, umoci, runc, docker-registry
.venv/bin/ruff check src tests bench
.venv/bin/mypy
exec .venv/bin/pytest "$@"
