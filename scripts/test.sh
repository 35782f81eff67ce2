#!/usr/bin/env bash
# The test suite (what CI runs): install, lint, then pytest. Tests that need ../shared/kit skip
# with a reason when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ruff check elcore pipelines tests benchmarks
python3 -m pytest -q "$@"
