#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, runs the test suite: unit,
# integration and tool tests. The chaos suite runs only when asked (`-L chaos`): one of its
# scenarios still finds an intermittent collector bug (docs/chaos.md, "Known failure").
#   scripts/test.sh [extra ctest arguments, e.g. -L unit, -L chaos or -R Codec]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$(nproc)"
if [[ $# -eq 0 ]]; then
  set -- -LE chaos
  echo "test.sh: the chaos suite is not in the default run; scripts/test.sh -L chaos runs it"
fi
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 600 "$@"
