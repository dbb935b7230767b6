#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, runs the test suite: unit,
# integration, tool and chaos tests (about 5 minutes on 2 cores after the build).
#   scripts/test.sh [extra ctest arguments, e.g. -L unit, -L chaos, -LE chaos or -R Codec]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$(nproc)"
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 600 "$@"
