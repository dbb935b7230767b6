#!/usr/bin/env bash
# Installs Outpost's build and test dependencies from Debian 12 packages, and unpacks the
# Debian source package of Paho MQTT C++ into third_party/ (git-ignored): outpost-agent links
# it statically, because Debian ships Paho C++ only as a shared library (docs/BENCHMARKS.md,
# "Agent memory"); if Debian's source is not the version cmake/paho-cpp-version.txt names, it
# warns and the agent links the shared one. Idempotent and non-interactive; touches apt only
# for what is missing.
#   scripts/install-deps.sh           build, test and demo dependencies
#   scripts/install-deps.sh --fuzz    also clang and its sanitizer runtimes (libFuzzer)
#   scripts/install-deps.sh --bench   also gnuplot (bench/report.sh draws its PNGs with it)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(cmake make g++ pkg-config python3 python3-protobuf dpkg-dev
  libpaho-mqttpp-dev libpaho-mqtt-dev nanopb libnanopb-dev libsqlite3-dev
  libboost-dev libspdlog-dev libtomlplusplus-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev mosquitto mosquitto-clients openssl libssl-dev
  ca-certificates  # the system trust store https webhooks verify against by default
  libpq-dev postgresql  # the PostgreSQL sink's client library; the server its tests start
  prometheus  # for promtool: the tests lint both programs' metrics pages with it
  nats-server  # a clustered MQTT broker: a test runs Outpost on a 3-node cluster
  chromium sqlite3  # the headless browser and the database shell the console's test drives (tests/console)
  help2man)  # the Debian packages' manual pages, from each program's --help (cmake/Packaging.cmake)
if [[ "${1:-}" == "--fuzz" ]]; then
  packages+=(clang libclang-rt-14-dev)
elif [[ "${1:-}" == "--bench" ]]; then
  packages+=(gnuplot-nox)
fi

# The source package the agent's static Paho C++ is built from (cmake/OutpostStaticAgent.cmake),
# and the directory apt-get source unpacks it to (upstream version; Debian's patches applied).
# The version the build expects is kept in cmake/paho-cpp-version.txt alone.
paho_src_package=paho.mqtt.cpp
paho_version=$(grep -m1 '^[0-9]' "$root/cmake/paho-cpp-version.txt")
paho_src_dir=$paho_src_package-$paho_version
paho_src_list=/etc/apt/sources.list.d/outpost-debian-src.sources

sudo=""
as_root() {
  if [[ $(id -u) -ne 0 && -z "$sudo" ]]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo "$@"
}
export DEBIAN_FRONTEND=noninteractive
updated=0

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
else
  echo "install-deps: installing ${missing[*]}"
  as_root apt-get update -q
  updated=1
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The console's browser test drives that chromium with playwright-core, pinned in
# tests/console/package-lock.json (no browser is downloaded). Needs Node.js and npm; without
# them the test reports itself skipped.
if [[ ! -d "$root/tests/console/node_modules/playwright-core" ]]; then
  if command -v npm >/dev/null; then
    echo "install-deps: npm ci --prefix tests/console (playwright-core)"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$root/tests/console" --no-audit \
      --no-fund --loglevel=error
  else
    echo "install-deps: WARNING: no npm: the console's browser test will be skipped" >&2
  fi
fi

if [[ -f "$root/third_party/$paho_src_dir/src/async_client.cpp" ]]; then
  echo "install-deps: third_party/$paho_src_dir already unpacked"
  exit 0
fi

# apt-get source needs a deb-src entry; Debian 12's default sources have none.
if [[ ! -f "$paho_src_list" ]]; then
  echo "install-deps: adding $paho_src_list (deb-src, bookworm main)"
  printf '%s\n' "# Added by Outpost's scripts/install-deps.sh: source packages (apt-get source)." \
    "Types: deb-src" "URIs: http://deb.debian.org/debian" "Suites: bookworm" \
    "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" |
    as_root tee "$paho_src_list" >/dev/null
  updated=0
fi
if [[ $updated -eq 0 ]]; then
  as_root apt-get update -q
fi

# Download (the .dsc is checked against the signed Sources index) and unpack in a scratch
# directory, then move the tree into place, so an interrupted run leaves nothing half-done.
work=$(mktemp -d)
chmod 755 "$work"  # apt fetches as its _apt user
trap 'rm -rf "$work"' EXIT
# Anything short of the expected version is a warning, not a failure: the build then links
# Debian's shared Paho C++ (CMake warns too), works, and misses only the agent's memory target.
fallback() {
  echo "install-deps: WARNING: $*" >&2
  echo "install-deps: WARNING: outpost-agent will link Debian's shared Paho C++, not a static" \
    "one, and miss its memory target (docs/BENCHMARKS.md, \"Agent memory\"). To build it" \
    "static, unpack paho.mqtt.cpp $paho_version into third_party/$paho_src_dir, or move" \
    "cmake/paho-cpp-version.txt to Debian's version and check that the agent still builds." >&2
  exit 0
}
echo "install-deps: fetching the Debian source package $paho_src_package $paho_version"
if ! (cd "$work" && apt-get source -q "$paho_src_package"); then
  fallback "apt-get source $paho_src_package failed"
fi
if [[ ! -f "$work/$paho_src_dir/src/async_client.cpp" ]]; then
  got=$(cd "$work" && ls -d "$paho_src_package"-*/ 2>/dev/null | tr -d / | tr '\n' ' ')
  fallback "apt-get source $paho_src_package unpacked '${got% }', not $paho_src_dir:" \
    "Debian's source package is not the version cmake/paho-cpp-version.txt expects"
fi
mkdir -p "$root/third_party"
rm -rf "${root:?}/third_party/$paho_src_dir"
mv "$work/$paho_src_dir" "$root/third_party/$paho_src_dir"
echo "install-deps: unpacked third_party/$paho_src_dir"
