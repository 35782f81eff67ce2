#!/usr/bin/env bash
# Install elq and its test tools into the current Python. torch is pinned to the CPU build that
# lies on this kind of machine's disk; an unpinned torch would pull a multi-GB CUDA wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check --no-compile torch==2.13.0 -e '.[dev]'
