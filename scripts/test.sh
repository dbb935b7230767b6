#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, runs the whole test suite.
#   scripts/test.sh [extra ctest arguments, e.g. -L unit or -R Codec]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$(nproc)"
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 600 "$@"
