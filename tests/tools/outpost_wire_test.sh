#!/usr/bin/env bash
# End-to-end checks of the outpost-wire binary: exit codes, outputs, config errors,
# and that docs/wire-format.md's worked example is what the code really produces.
#   outpost_wire_test.sh <path to outpost-wire> <repo root> [emulator and its arguments...]
# A cross build passes its CMAKE_CROSSCOMPILING_EMULATOR (qemu-user) as the rest.
set -u
wire=$1
root=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ $# -gt 0 ]]; then  # the binary through the emulator, as one command
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$*" "$wire" >"$tmp/wire"
  chmod +x "$tmp/wire"
  wire=$tmp/wire
fi
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

expect_code() {  # expect_code <code> <description> <command...>
  local want=$1 what=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  [[ $got -eq $want ]] || fail "$what: exit $got, expected $want; stderr: $(cat "$tmp/err")"
}

# The docs' worked example, byte for byte.
doc_hex=$(awk '/^## Worked example/{f=1} f&&/^```$/{n++; next} f&&n==1{print}' \
  "$root/docs/wire-format.md" | tr -d ' \n')
code_hex=$("$wire" example)
[[ -n "$doc_hex" && "$doc_hex" == "$code_hex" ]] ||
  fail "docs/wire-format.md example ($doc_hex) differs from 'outpost-wire example' ($code_hex)"

# decode: valid, rejected (exit 3, reason on stderr), unroutable topic, bad hex, missing file.
"$wire" example >"$tmp/example.hex"
expect_code 0 "decode valid" "$wire" decode --hex "$tmp/example.hex"
grep -q '"value":21.37' "$tmp/out" || fail "decode output lacks the 21.37 reading: $(cat "$tmp/out")"
expect_code 3 "identity mismatch" "$wire" decode --hex --topic outpost/v1/s/gw-8/data \
  --receive-time-us 1700000000000000 "$tmp/example.hex"
grep -q '^rejected: identity_mismatch: ' "$tmp/err" || fail "no identity_mismatch: $(cat "$tmp/err")"
expect_code 3 "unroutable topic" "$wire" decode --hex --topic outpost/v1/s/gw+7/data "$tmp/example.hex"
grep -q '^rejected: unroutable_topic: ' "$tmp/err" || fail "no unroutable_topic: $(cat "$tmp/err")"
expect_code 0 "valid on its topic" "$wire" decode --hex --topic outpost/v1/s/gw-7/data \
  --receive-time-us 1700000000000000 "$tmp/example.hex"
# The README's pipe: the example stamped now validates on its topic; the 2023 one is too old.
"$wire" example --now >"$tmp/now.hex"
expect_code 0 "example --now valid on its topic now" "$wire" decode --hex \
  --topic outpost/v1/site-a/gw-7/data "$tmp/now.hex"
grep -q '"value":21.37' "$tmp/out" || fail "example --now lacks the 21.37 reading: $(cat "$tmp/out")"
expect_code 3 "the 2023 example is too old now" "$wire" decode --hex \
  --topic outpost/v1/site-a/gw-7/data "$tmp/example.hex"
grep -q '^rejected: timestamp_out_of_bounds: ' "$tmp/err" || fail "2023 example: $(cat "$tmp/err")"
"$wire" example --now --binary >"$tmp/now.bin"
expect_code 0 "example --now --binary decodes as binary" "$wire" decode \
  --topic outpost/v1/site-a/gw-7/data "$tmp/now.bin"
[[ $(stat -c %s "$tmp/now.bin") -eq $(($(tr -d '\n' <"$tmp/now.hex" | wc -c) / 2)) ]] ||
  fail "example --binary is not the bytes of the hex"
printf 'zz' >"$tmp/bad.hex"
expect_code 2 "bad hex" "$wire" decode --hex "$tmp/bad.hex"
expect_code 1 "missing file" "$wire" decode "$tmp/missing.bin"
head -c 100 /dev/urandom >"$tmp/junk.bin"
expect_code 3 "random bytes" "$wire" decode "$tmp/junk.bin"

# Config: a good one is used, a bad one names file:line and key and exits 78.
printf '[validation]\nmax_past_age = "100000d"\n' >"$tmp/ok.toml"
expect_code 0 "old data accepted with a wide window" "$wire" --config "$tmp/ok.toml" decode \
  --hex --topic outpost/v1/s/gw-7/data "$tmp/example.hex"
printf '[validation]\n\nmax_past_age = "forever"\n' >"$tmp/bad.toml"
expect_code 78 "bad duration" "$wire" --config "$tmp/bad.toml" example
grep -q "bad.toml:3:16: validation.max_past_age: expected a duration" "$tmp/err" ||
  fail "config error message: $(cat "$tmp/err")"
printf '[validaton]\nx = 1\n' >"$tmp/typo.toml"
expect_code 78 "unknown key" "$wire" --config "$tmp/typo.toml" example
grep -q "typo.toml:2:5: validaton.x: unknown key" "$tmp/err" || fail "unknown key: $(cat "$tmp/err")"
expect_code 78 "missing config" "$wire" --config "$tmp/none.toml" example

# CLI conventions.
expect_code 0 "--version" "$wire" --version
grep -qx "outpost-wire [0-9.]*" "$tmp/out" || fail "--version printed: $(cat "$tmp/out")"
expect_code 0 "--help" "$wire" --help
expect_code 2 "no subcommand" "$wire"
expect_code 2 "bad log level" "$wire" --log-level loud example

# The demo checks itself (exit 1 if a malformed payload were accepted).
expect_code 0 "demo" "$wire" demo
grep -q "identity_mismatch" "$tmp/out" || fail "demo output lacks identity_mismatch"

if [[ $failures -gt 0 ]]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all outpost-wire checks passed"
