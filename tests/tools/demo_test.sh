#!/usr/bin/env bash
# scripts/demo.sh end to end, on the binaries already built and a short run: its summary
# shows stored readings, read after the collector exited, and no process it started (the
# broker, the collector, the simulators, the agents they start) outlives it, whether it runs
# to its end or is interrupted with SIGTERM half-way. Then the same with --postgres (its own
# PostgreSQL cluster, which must be gone too), when the PostgreSQL binaries are installed.
#   demo_test.sh <repo root> <build dir>
# Every process the demo starts inherits a token in its environment; after the demo has
# exited, /proc must show no process with that token.
set -u
root=$1
build=$2
tmp=$(mktemp -d)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
token="outpost-demo-test-$$-$RANDOM"

# The processes still alive that the demo started: pid and command line of each. (The
# token is not in this shell's environment, so neither this scan nor its grep match.)
leftovers() {
  local file pid
  for file in $(grep -l -a -F "OUTPOST_DEMO_TEST_TOKEN=$token" /proc/[0-9]*/environ 2>/dev/null); do
    pid=${file#/proc/}
    pid=${pid%/environ}
    [[ -e /proc/$pid ]] && echo "$pid $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")"
  done
}
cleanup() {  # the test's own cleanup: whatever a failed demo left is killed here
  local line
  while read -r line; do kill -KILL "${line%% *}" 2>/dev/null; done < <(leftovers)
  rm -rf "$tmp"
}
trap cleanup EXIT

demo() {  # demo <work dir> <args...>: the demo in the background, its pid in demo_pid
  local work=$1
  shift
  OUTPOST_DEMO_TEST_TOKEN=$token "$root/scripts/demo.sh" --no-build --build-dir "$build" \
    --work-dir "$work" "$@" >"$work.out" 2>&1 &
  demo_pid=$!
}

# 0. No command of the demo holds two command substitutions: bash 5.2 fails a trap that runs
# while a command parses its second one (scripts/demo.sh says more), and an interrupted demo
# then exits 2 instead of 143.
two=$(grep -nE '\$\([^(].*\$\([^(]' "$root/scripts/demo.sh" || true)
[[ -z "$two" ]] || fail "scripts/demo.sh holds commands with two command substitutions: $two"

# 1. A whole run, short.
demo "$tmp/full" --duration 6s
rc=0
wait "$demo_pid" || rc=$?
[[ $rc -eq 0 ]] || fail "demo exited $rc:$(tail -20 "$tmp/full.out")"
left=$(leftovers)
[[ -z "$left" ]] || fail "processes left after the demo ended: $left"
out=$(cat "$tmp/full.out")
stored=$(awk '/^ *readings stored/ {print $NF; exit}' <<<"$out")
[[ "$stored" =~ ^[0-9]+$ && "$stored" -gt 0 ]] || fail "summary shows no stored readings: $out"
# The summary comes after step 4 (the collector's SIGTERM), and the collector exited cleanly.
sigterm_line=$(grep -n '== 4. SIGTERM' <<<"$out" | cut -d: -f1)
summary_line=$(grep -n '^== Summary' <<<"$out" | cut -d: -f1)
[[ -n "$sigterm_line" && -n "$summary_line" && "$summary_line" -gt "$sigterm_line" ]] ||
  fail "the summary is not printed after the collector's SIGTERM: $out"
grep -q "the collector exited" <<<"$out" && fail "the collector did not exit 0: $out"
grep -q "stopped: received" "$tmp/full/collector.log" ||
  fail "the collector did not log its clean stop: $(tail -5 "$tmp/full/collector.log")"
grep -q "every reading sent is stored, once" <<<"$out" || echo "note: $(grep 'stored by the collector' <<<"$out")"

# 2. Interrupted while the fleets run: the broker, the collector, both simulators and the
# agents must all be gone when the demo has exited.
demo "$tmp/cut" --duration 60s
deadline=$((SECONDS + 30))
count() { leftovers | grep -c -e "$1" || true; }
until [[ $(count outpost-agent) -ge 3 && $(count outpost-sim) -ge 2 ]]; do
  if ((SECONDS >= deadline)) || ! kill -0 "$demo_pid" 2>/dev/null; then
    fail "the fleets did not start: $(tail -20 "$tmp/cut.out")"
    break
  fi
  sleep 0.2
done
[[ $(count mosquitto) -eq 1 && $(count "outpost-collector --config") -ge 1 ]] ||
  fail "expected the broker and the collector running, saw: $(leftovers)"
kill -TERM "$demo_pid"
rc=0
wait "$demo_pid" || rc=$?
[[ $rc -eq 143 ]] || fail "an interrupted demo exited $rc, expected 143:$(tail -20 "$tmp/cut.out")"
left=$(leftovers)
[[ -z "$left" ]] || fail "processes left after the demo was interrupted: $left"

# 3. --postgres: a short whole run, then one interrupted once the collector is on PostgreSQL.
pg_bin=${OUTPOST_POSTGRES_BIN:-/usr/lib/postgresql/15/bin}
if [[ ! -x "$pg_bin/initdb" ]]; then
  echo "note: $pg_bin/initdb not found: the --postgres demo is not run"
else
  chmod 755 "$tmp"  # as root, PostgreSQL runs as the postgres user: it must reach its directory
  demo "$tmp/pg" --postgres --duration 6s
  rc=0
  wait "$demo_pid" || rc=$?
  [[ $rc -eq 0 ]] || fail "the PostgreSQL demo exited $rc:$(tail -20 "$tmp/pg.out")"
  left=$(leftovers)
  [[ -z "$left" ]] || fail "processes left after the PostgreSQL demo ended: $left"
  out=$(cat "$tmp/pg.out")
  grep -q "outpost-collector on PostgreSQL on 127.0.0.1:" <<<"$out" ||
    fail "the demo did not say it stores in PostgreSQL: $out"
  pg_stored=$(awk '/^ *readings stored/ {print $NF; exit}' <<<"$out")
  [[ "$pg_stored" =~ ^[0-9]+$ && "$pg_stored" -gt 0 ]] ||
    fail "the PostgreSQL demo's summary shows no stored readings: $out"
  grep -q "every reading sent is stored, once" <<<"$out" ||
    echo "note (PostgreSQL): $(grep 'stored by the collector' <<<"$out")"
  [[ ! -e "$tmp/pg/collector.db" ]] || fail "the PostgreSQL demo wrote a SQLite file"

  demo "$tmp/pgcut" --postgres --duration 60s
  deadline=$((SECONDS + 40))
  until [[ $(count outpost-sim) -ge 2 ]] && grep -q "subscribed to" "$tmp/pgcut/collector.log" 2>/dev/null; do
    if ((SECONDS >= deadline)) || ! kill -0 "$demo_pid" 2>/dev/null; then
      fail "the PostgreSQL demo's fleets did not start: $(tail -20 "$tmp/pgcut.out")"
      break
    fi
    sleep 0.2
  done
  [[ $(count "bin/postgres -D") -eq 1 ]] || fail "expected the demo's PostgreSQL running, saw: $(leftovers)"
  kill -TERM "$demo_pid" 2>/dev/null
  rc=0
  wait "$demo_pid" || rc=$?
  [[ $rc -eq 143 ]] || fail "an interrupted PostgreSQL demo exited $rc, expected 143:$(tail -20 "$tmp/pgcut.out")"
  left=$(leftovers)
  [[ -z "$left" ]] || fail "processes left after the PostgreSQL demo was interrupted: $left"
fi

if [[ $failures -gt 0 ]]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "demo checks passed: $stored readings stored, nothing left running"
