#!/usr/bin/env bash
# The README's first command: installs dependencies, builds, runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target outpost-wire
echo
build/common/outpost-wire demo
