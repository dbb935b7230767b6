#!/usr/bin/env bash
# The Debian packages' default configurations (packaging/etc/*.toml) pass --check-config of the
# programs they are for, with their state and runtime directories moved under a scratch
# directory; the effective configuration keeps the packaged choices (loopback metrics, the
# state directory). A section the program does not know fails the same check (exit 78).
# scripts/package.sh --install-test checks the installed files on the real paths.
#   packaged_config_test.sh <outpost-agent> <outpost-collector> <repo root>
set -u
agent=$1
collector=$2
root=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
mkdir -p "$tmp/var/lib/outpost" "$tmp/run/outpost"

# check <program> <config name> <expected lines of the effective configuration...>
check() {
  local bin=$1 name=$2 out code
  shift 2
  sed -e "s|/var/lib/outpost|$tmp/var/lib/outpost|g" -e "s|/run/outpost|$tmp/run/outpost|g" \
    "$root/packaging/etc/$name" >"$tmp/$name"
  out=$("$bin" --check-config --config "$tmp/$name" 2>&1)
  code=$?
  [[ $code -eq 0 ]] || { fail "$name: --check-config exited $code: $out"; return; }
  for line in "$@"; do
    grep -qxF "$line" <<<"$out" || fail "$name: the effective configuration has no line '$line'"
  done
  printf '\n[no_such_section]\nkey = 1\n' >>"$tmp/$name"
  "$bin" --check-config --config "$tmp/$name" >/dev/null 2>&1
  code=$?
  [[ $code -eq 78 ]] || fail "$name with an unknown key: --check-config exited $code, not 78"
  echo "ok: $name"
}

check "$agent" agent.toml "path = \"$tmp/var/lib/outpost/agent.db\"" \
  "unix_socket = \"$tmp/run/outpost/agent.sock\"" 'udp_listen = "127.0.0.1:8094"' \
  'listen = "127.0.0.1:9108"'
check "$collector" collector.toml "path = \"$tmp/var/lib/outpost/collector.db\"" \
  'kind = "sqlite"' 'listen = "127.0.0.1:9109"'

[[ $failures -eq 0 ]] || { echo "$failures failure(s)"; exit 1; }
