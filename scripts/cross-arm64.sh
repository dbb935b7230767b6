#!/usr/bin/env bash
# Cross-builds Outpost for arm64 (aarch64) gateways and runs its unit tests under qemu-user:
# installs what is missing (the cross compiler, qemu-user-static and the arm64 multiarch
# -dev packages, beside the amd64 ones the native build keeps using), configures build-arm64/
# with cmake/toolchain-aarch64-linux-gnu.cmake, builds, runs `ctest -L unit` and prints how
# long each phase took. Idempotent; touches apt only for what is missing.
#   scripts/cross-arm64.sh             install, configure, build, unit tests
#   scripts/cross-arm64.sh --package   also the arm64 .deb packages (CPack), into
#                                      build-arm64/packages/ (cmake/Packaging.cmake)
# Environment: OUTPOST_ARM64_BUILD_DIR (default build-arm64), JOBS (default nproc);
# ccache is used when installed (CCACHE_DISABLE=1 for a cold build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${OUTPOST_ARM64_BUILD_DIR:-build-arm64}
jobs=${JOBS:-$(nproc)}
package=0
case "${1:-}" in
  "") ;;
  --package) package=1 ;;
  *) echo "usage: scripts/cross-arm64.sh [--package]" >&2; exit 2 ;;
esac

start=$SECONDS
phase_start=$SECONDS
timings=()
phase() {  # phase <name>: ends the phase before (its time is kept) and starts <name>
  [[ -n "${phase_name:-}" ]] && timings+=("$(printf '%-10s %5d s' "$phase_name" $((SECONDS - phase_start)))")
  phase_name=$1
  phase_start=$SECONDS
  [[ -n "$1" ]] && echo && echo "=== cross-arm64: $1"
  return 0
}
report() {
  phase ""
  echo
  echo "=== cross-arm64: elapsed per phase"
  printf '  %s\n' "${timings[@]}"
  printf '  %-10s %5d s\n' total $((SECONDS - start))
}

export DEBIAN_FRONTEND=noninteractive
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "cross-arm64: run as root or install sudo" >&2; exit 1; }
  sudo=sudo
fi

phase install
# The native dependencies first (the build's host tools: cmake, nanopb's generator, python3),
# and the Paho C++ source the static agent is built from, for arm64 too.
scripts/install-deps.sh
host=(crossbuild-essential-arm64 qemu-user-static)
# The arm64 side: every one of these is Multi-Arch: same and installs beside its amd64 twin
# (same version; apt moves the amd64 one along if needed). Header-only or arch-independent
# packages (libcli11-dev, nanopb, Boost's headers) serve both architectures as installed.
# libpq-dev is not Multi-Arch: the arm64 libpq5 alone, with the shared headers
# (cmake/toolchain-aarch64-linux-gnu.cmake).
target=(libc6-dev libpaho-mqttpp-dev libpaho-mqtt-dev libnanopb-dev libsqlite3-dev libssl-dev
  libgtest-dev libgmock-dev libpq5 libspdlog-dev libfmt-dev libtomlplusplus-dev pkg-config)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in "${host[@]}"; do installed "$p" || missing+=("$p"); done
need_arch=0
dpkg --print-foreign-architectures | grep -qx arm64 || need_arch=1
for p in "${target[@]}"; do
  installed "$p:arm64" && continue
  # The amd64 twin's installed version, when the archive still has it for arm64: so that
  # installing the arm64 package does not upgrade (and restart) the host's one.
  v=$(dpkg-query -W -f='${Version}' "$p:amd64" 2>/dev/null || true)
  if [[ -n "$v" && $need_arch -eq 0 ]] &&
    apt-cache madison "$p:arm64" 2>/dev/null | awk -F' *[|] *' '{print $2}' | grep -qxF "$v"; then
    missing+=("$p:arm64=$v")
  else
    missing+=("$p:arm64")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "cross-arm64: all arm64 packages already installed"
else
  if [[ $need_arch -eq 1 ]]; then
    echo "cross-arm64: adding the arm64 architecture (dpkg --add-architecture arm64)"
    $sudo dpkg --add-architecture arm64
  fi
  echo "cross-arm64: installing ${missing[*]}"
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

phase configure
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTPOST_BUILD_BENCH=OFF -DOUTPOST_BUILD_TESTS=ON \
  "${launcher[@]}"
# A library found for the wrong architecture would only fail at link time, or worse, at run.
if grep -E '^[A-Za-z0-9_]+(LIBRARY|_STATIC|_DIR)[A-Za-z_]*:[A-Z]+=.*x86_64-linux-gnu' \
  "$build/CMakeCache.txt"; then
  echo "cross-arm64: FAIL: the configure step found amd64 libraries (above)" >&2
  exit 1
fi

phase build
cmake --build "$build" -j "$jobs"
agent_file=$(file -b "$build/agent/outpost-agent")
echo "outpost-agent: $agent_file"
[[ "$agent_file" == *"ARM aarch64"* ]] || {
  echo "cross-arm64: FAIL: outpost-agent is not an arm64 program" >&2
  exit 1
}

phase "unit tests"
# Unit tests need no broker or other process of ours, so they run under qemu-user
# (CMAKE_CROSSCOMPILING_EMULATOR); integration, tool and chaos tests run on amd64. Left out,
# because qemu-user, not the code, decides its outcome:
#   StartupPages.*  reads the program's own /proc/self/maps, which under qemu-user is
#                   qemu's view of the guest, not the kernel's
# A timeout per test, so that a hang fails the run instead of stalling it.
qemu_excluded='^StartupPages\.'
ctest --test-dir "$build" --output-on-failure -j "$jobs" -L unit -E "$qemu_excluded" --timeout 120

if [[ $package -eq 1 ]]; then
  phase package
  # cmake/Packaging.cmake names the architecture from the toolchain's multiarch triplet.
  # dpkg-shlibdeps (CPack's Depends) reads the arm64 programs with the cross objdump and the
  # arm64 libraries' symbols files when told the host architecture.
  deb_arch=$(dpkg-architecture -t aarch64-linux-gnu -qDEB_HOST_ARCH 2>/dev/null)
  rm -f "$build"/packages/*.deb
  (cd "$build" && DEB_HOST_ARCH=$deb_arch cpack -G DEB)
  debs=("$build"/packages/*.deb)
  [[ -e "${debs[0]}" ]] || { echo "cross-arm64: FAIL: cpack made no .deb" >&2; exit 1; }
  for deb in "${debs[@]}"; do
    arch=$(dpkg-deb -f "$deb" Architecture)
    echo "$deb: Architecture $arch; Depends: $(dpkg-deb -f "$deb" Depends)"
    [[ "$arch" == "$deb_arch" ]] || { echo "cross-arm64: FAIL: $deb is not $deb_arch" >&2; exit 1; }
    program=$(dpkg-deb -c "$deb" | awk '$6 ~ /^\.\/usr\/bin\// {print $6; exit}')
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "$program" | file -b - | grep -q 'ARM aarch64' ||
      { echo "cross-arm64: FAIL: $program in $deb is not an arm64 program" >&2; exit 1; }
  done
  if command -v lintian >/dev/null; then
    lintian -I --pedantic --fail-on error,warning,info,pedantic "${debs[@]}"
    echo "cross-arm64: lintian: no tag"
  fi
fi
report
