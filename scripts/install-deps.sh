#!/usr/bin/env bash
# Installs Outpost's build and test dependencies from Debian 12 packages.
# Idempotent and non-interactive; skips apt entirely when everything is present.
#   scripts/install-deps.sh           build, test and demo dependencies
#   scripts/install-deps.sh --fuzz    also clang and its sanitizer runtimes (libFuzzer)
#   scripts/install-deps.sh --bench   also gnuplot (bench/report.sh draws its PNGs with it)
set -euo pipefail

packages=(cmake make g++ pkg-config python3 python3-protobuf
  libpaho-mqttpp-dev libpaho-mqtt-dev nanopb libnanopb-dev libsqlite3-dev
  libboost-dev libspdlog-dev libtomlplusplus-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev mosquitto mosquitto-clients openssl libssl-dev)
if [[ "${1:-}" == "--fuzz" ]]; then
  packages+=(clang libclang-rt-14-dev)
elif [[ "${1:-}" == "--bench" ]]; then
  packages+=(gnuplot-nox)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
