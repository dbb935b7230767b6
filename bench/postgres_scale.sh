#!/usr/bin/env bash
# collector_bench on PostgreSQL with 1, 2 and 3 collectors (one shared group), each run
# `--repeat` times with 50 and with 5 readings a message; prints one line per run (the load
# average beside it) from each run's RESULT line. Exit 1 if any run lost or doubled a reading.
#   bench/postgres_scale.sh [--build-dir build] [--collectors "1 2 3"] [--repeat 2] [--seconds 10]
# One run by hand: build/bench/collector_bench --postgres --collectors N [--readings 5 --messages 100000]
set -uo pipefail
cd "$(dirname "$0")/.."
build=build counts="1 2 3" repeat=2 seconds=10
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --collectors) counts=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -h | --help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "postgres_scale.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
failed=0
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2}'; }
printf '%-3s %-4s %-10s %-10s %-9s %-9s %-9s %-9s %-10s %-9s %-9s %-9s %-9s %s\n' N rdg/m \
  drain/s stored/s per-coll coll-us pg-us mosq-us pub-us d-coll-us d-pg-us p99ms deadlock load1
for n in $counts; do
  for per in 50 5; do
    messages=40000
    ((per == 5)) && messages=100000
    for ((r = 0; r < repeat; r++)); do
      load=$(cut -d' ' -f1 /proc/loadavg)
      out=$("$build/bench/collector_bench" --postgres --collectors "$n" --readings "$per" \
        --messages "$messages" --seconds "$seconds" 2>/dev/null)
      rc=$?
      ((rc == 0)) || failed=1
      line=$(grep '^RESULT' <<<"$out")
      stored=$(field "$line" stored_rps)
      printf '%-3s %-4s %-10s %-10s %-9s %-9s %-9s %-9s %-10s %-9s %-9s %-9s %-9s %s%s\n' "$n" "$per" \
        "$(field "$line" backlog_rps)" "$stored" "$((${stored:-0} / n))" \
        "$(field "$line" collector_us_per_rdg)" "$(field "$line" pg_us_per_rdg)" \
        "$(field "$line" broker_us_per_rdg)" "$(field "$line" publisher_us_per_rdg)" \
        "$(field "$line" backlog_collector_us_per_rdg)" "$(field "$line" backlog_pg_us_per_rdg)" \
        "$(field "$line" p99_ms)" "$(field "$line" deadlocks)" "$load" "$( ((rc == 0)) || echo ' FAILED')"
    done
  done
done
exit $failed
