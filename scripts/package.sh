#!/usr/bin/env bash
# Builds Outpost's Debian packages (outpost-agent, outpost-collector, outpost-tools) with CPack
# (cmake/Packaging.cmake) and, with --install-test, installs them on this machine and takes
# them apart again: dpkg -i, the files, the user outpost, --check-config of both daemons on the
# installed configuration as that user, a short run of each, systemd-analyze verify on the
# units, lintian, a reinstall over a changed conffile, remove, reinstall, purge; each step
# checked. Prints a table of the packages. docs/operations.md, "Installing the packages".
#   scripts/package.sh                  configure, build the programs and their manual pages
#                                       (target outpost_packaged), cpack -G DEB
#   scripts/package.sh --install-test   also the install test (root or sudo; it changes this
#                                       machine's /etc, /var/lib and users, then cleans up)
# Options: --build-dir DIR (default build, the README test command's tree, reused as it is
# configured). Environment: JOBS (default nproc). Packages: <build dir>/packages/*.deb.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

build=build
install_test=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --install-test) install_test=1 ;;
    --build-dir) build=${2:?--build-dir needs a directory}; shift ;;
    *) echo "usage: scripts/package.sh [--install-test] [--build-dir DIR]" >&2; exit 2 ;;
  esac
  shift
done
jobs=${JOBS:-$(nproc)}
packages=(outpost-agent outpost-collector outpost-tools)
start=$SECONDS
step() { echo; echo "=== package [$((SECONDS - start)) s] $*"; }
fail() { echo "package: FAIL: $*" >&2; exit 1; }

sudo=""
if [[ $install_test -eq 1 && $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || fail "the install test needs root or sudo"
  sudo=sudo
fi

# The manual pages are made by help2man (cmake/Packaging.cmake): without it the packages lack them.
command -v help2man >/dev/null || fail "no help2man: scripts/install-deps.sh installs it"

step "configure and build ($build)"
configure=(cmake -S . -B "$build")
# A fresh tree is configured as the README test command configures it, so that it serves both.
[[ -f "$build/CMakeCache.txt" ]] || configure+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
"${configure[@]}" >/dev/null
cmake --build "$build" -j "$jobs" --target outpost_packaged  # the four programs, their man pages

step "cpack -G DEB"
rm -f "$build"/packages/*.deb
(cd "$build" && cpack -G DEB) >"$build/cpack.log" 2>&1 || { cat "$build/cpack.log"; fail "cpack"; }
declare -A deb
for p in "${packages[@]}"; do
  f=$(ls "$build"/packages/"${p}"_*.deb 2>/dev/null) || fail "no $p .deb in $build/packages"
  deb[$p]=$f
  echo "$f"
  dpkg-deb -f "$f" Package Version Architecture Depends | sed 's/^/  /'
done

declare -A result
for p in "${packages[@]}"; do result[$p]=built; done

table() {
  echo
  echo "=== package: $((SECONDS - start)) s"
  printf '%-18s %-8s %-6s %9s  %s\n' package version arch size result
  for p in "${packages[@]}"; do
    f=${deb[$p]}
    printf '%-18s %-8s %-6s %7d K  %s\n' "$p" "$(dpkg-deb -f "$f" Version)" \
      "$(dpkg-deb -f "$f" Architecture)" $(($(stat -c %s "$f") / 1024)) "${result[$p]}"
  done
}

if [[ $install_test -eq 0 ]]; then
  table
  exit 0
fi

# --- install test ------------------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
step "tools of the install test"
need=()
for t in lintian:lintian systemd-analyze:systemd adduser:adduser curl:curl; do
  command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
if [[ ${#need[@]} -gt 0 ]]; then
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi

installed() { dpkg-query -W -f '${Status}\n' "$1" 2>/dev/null | grep -q ' installed$'; }
known() { dpkg-query -W -f '${Status}\n' "$1" 2>/dev/null | grep -qv 'not-installed$'; }
check() {  # check <what> <command...>: the command must succeed
  local what=$1
  shift
  if "$@"; then echo "  ok: $what"; else fail "$what"; fi
}
unknown() { ! known "$1"; }
absent() { [[ ! -e "$1" && ! -L "$1" ]]; }
quiet() {  # quiet <command...>: its output only when it fails
  local out
  out=$("$@" 2>&1) || { echo "$out"; return 1; }
}

left=()
for p in "${packages[@]}"; do known "$p" && left+=("$p"); done
if [[ ${#left[@]} -gt 0 ]]; then
  step "purging what an earlier run left: ${left[*]}"
  $sudo dpkg -P "${left[@]}"
fi

step "lintian"
lintian_out=$(lintian -I --pedantic --fail-on error,warning,info,pedantic "${deb[@]}" 2>&1) ||
  { echo "$lintian_out"; fail "lintian found tags (above)"; }
[[ -n "$lintian_out" ]] && echo "$lintian_out"
for p in "${packages[@]}"; do result[$p]="lintian clean"; done
echo "  ok: no tag at error, warning, info or pedantic level (overrides: their reasons)"
lintian -I --pedantic --show-overrides "${deb[@]}" 2>&1 | grep '^O:' | sed 's/^/  /' || true

# installed_files <pkg>: every file and symlink dpkg says it installed is there.
installed_files() {
  local p=$1 f n=0
  while IFS= read -r f; do
    [[ -d "$f" && ! -L "$f" ]] && continue
    [[ -e "$f" || -L "$f" ]] || { echo "  missing: $f"; return 1; }
    n=$((n + 1))
  done < <(dpkg -L "$p")
  echo "  $p: $n files"
}

# run_daemon <binary> <config> <metrics host:port>: the installed daemon on the installed
# configuration, as the user outpost (as its unit runs it), until /healthz answers 200; then
# SIGTERM, and it must exit 0. Skipped when something else holds its metrics port.
run_daemon() {
  local bin=$1 config=$2 addr=$3 pid code=0
  if ss -Hltn "sport = :${addr##*:}" | grep -q .; then
    echo "  skipped: a running $bin (port ${addr##*:} is taken on this machine)"
    return 0
  fi
  # setpriv execs the daemon itself (runuser would stay its parent and take the SIGTERM).
  $sudo setpriv --reuid=outpost --regid=outpost --init-groups -- "$bin" --config "$config" \
    >"$build/package-run.log" 2>&1 &
  pid=$!
  if ! wait_for 15 curl -sf -o /dev/null "http://$addr/healthz"; then
    kill "$pid" 2>/dev/null || true
    cat "$build/package-run.log"
    return 1
  fi
  kill -TERM "$pid"
  wait "$pid" || code=$?
  [[ $code -eq 0 ]] || { cat "$build/package-run.log"; echo "  $bin exited $code"; return 1; }
  echo "  $bin ran on $config as outpost (/healthz 200, SIGTERM: exit 0)"
  ran+=("$bin")
}
ran=()

check_installed() {
  for p in "${packages[@]}"; do
    check "$p installed" installed "$p"
    check "$p: its files are in place" installed_files "$p"
  done
  for b in outpost-agent outpost-collector outpost-sim outpost-wire; do
    check "/usr/bin/$b runs (--version: $(/usr/bin/$b --version 2>&1 | head -1))" \
      quiet /usr/bin/$b --version
  done
  check "conffiles: /etc/outpost/agent.toml, collector.toml" \
    bash -c "dpkg-query -W -f '\${Conffiles}\n' outpost-agent | grep -q ' /etc/outpost/agent.toml ' &&
             dpkg-query -W -f '\${Conffiles}\n' outpost-collector | grep -q ' /etc/outpost/collector.toml '"
  # shellcheck disable=SC2016  # expanded by the inner bash
  check "system user and group outpost (home /var/lib/outpost, no login)" bash -c '
    IFS=: read -r _ _ uid gid _ home shell < <(getent passwd outpost) &&
    [[ $uid -lt 1000 && $home == /var/lib/outpost && $shell == */nologin ]] &&
    [[ $(getent group outpost | cut -d: -f3) == "$gid" ]]'
  check "/var/lib/outpost: outpost:outpost 0750" \
    test "$(stat -c '%U:%G %a' /var/lib/outpost)" = "outpost:outpost 750"
  if command -v systemd-tmpfiles >/dev/null; then
    check "/run/outpost: outpost:outpost 0750 (tmpfiles.d)" \
      test "$(stat -c '%U:%G %a' /run/outpost)" = "outpost:outpost 750"
  fi
  for u in outpost-agent outpost-collector; do
    check "$u.service enabled (multi-user.target.wants), not masked" bash -c "
      test -L /etc/systemd/system/multi-user.target.wants/$u.service &&
      test ! -L /etc/systemd/system/$u.service"
  done
  check "outpost-agent --check-config on the installed agent.toml, as outpost" \
    quiet $sudo runuser -u outpost -- outpost-agent --check-config --config /etc/outpost/agent.toml
  check "outpost-collector --check-config on the installed collector.toml, as outpost" \
    quiet $sudo runuser -u outpost -- outpost-collector --check-config \
    --config /etc/outpost/collector.toml
  check "systemd-analyze verify on the installed units" \
    quiet systemd-analyze verify /lib/systemd/system/outpost-agent.service \
    /lib/systemd/system/outpost-collector.service
}

t0=$SECONDS
step "install: dpkg -i ${packages[*]}"
$sudo dpkg -i "${deb[@]}"
check_installed
check "outpost-agent runs" run_daemon outpost-agent /etc/outpost/agent.toml 127.0.0.1:9108
check "outpost-collector runs" run_daemon outpost-collector /etc/outpost/collector.toml \
  127.0.0.1:9109
t_install=$((SECONDS - t0))

step "reinstall over a changed conffile (as an upgrade runs: prerm upgrade, postinst configure)"
echo '# changed by the install test' | $sudo tee -a /etc/outpost/agent.toml >/dev/null
$sudo dpkg -i --force-confold "${deb[@]}"
check "the changed agent.toml is kept" grep -q 'changed by the install test' /etc/outpost/agent.toml
check_installed

step "remove (dpkg -r): programs go, conffiles and state stay"
$sudo dpkg -r "${packages[@]}"
for b in outpost-agent outpost-collector outpost-sim outpost-wire; do
  check "/usr/bin/$b removed" absent /usr/bin/$b
done
check "conffiles kept" test -f /etc/outpost/agent.toml -a -f /etc/outpost/collector.toml
check "state kept (/var/lib/outpost)" test -d /var/lib/outpost
# What the short runs above stored: purge is to remove it.
for b in "${ran[@]}"; do
  db=/var/lib/outpost/${b#outpost-}.db
  check "$db (written by the run) kept" test -f "$db"
done
for u in outpost-agent outpost-collector; do
  check "$u.service gone from /lib/systemd/system" absent "/lib/systemd/system/$u.service"
done

step "reinstall after remove (the conffiles were kept)"
$sudo dpkg -i "${deb[@]}"
check "the changed agent.toml is still the one used" \
  grep -q 'changed by the install test' /etc/outpost/agent.toml
check_installed

step "purge (dpkg -P): nothing of the packages is left"
$sudo dpkg -P "${packages[@]}"
for p in "${packages[@]}"; do check "$p unknown to dpkg" unknown "$p"; done
for f in /usr/bin/outpost-agent /usr/bin/outpost-collector /usr/bin/outpost-sim \
  /usr/bin/outpost-wire /etc/outpost /var/lib/outpost /run/outpost \
  /usr/lib/tmpfiles.d/outpost-agent.conf /usr/share/doc/outpost-agent \
  /usr/share/outpost-tools; do
  check "$f gone" absent "$f"
done
check "no unit, enablement or mask left in /etc/systemd and deb-systemd-helper's state" \
  bash -c '! find /etc/systemd /var/lib/systemd/deb-systemd-helper-enabled \
    /var/lib/systemd/deb-systemd-helper-masked -name "outpost*" 2>/dev/null | grep .'
check "the user outpost stays (Debian's practice: files elsewhere may be its)" \
  getent passwd outpost
for p in "${packages[@]}"; do result[$p]="lintian clean, install/remove/purge ok"; done
echo "  install and first checks: $t_install s"
table
