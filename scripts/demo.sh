#!/usr/bin/env bash
# The README's first command: installs dependencies, builds, and runs the whole system for
# about a minute: a local mosquitto, an outpost-collector on demo/collector.db, a simulated
# office fleet publishing directly (with malformed payloads, duplicates, reboots and network
# cuts switched on) and a small lab fleet sending through real outpost-agent processes; then
# a summary of what was sent against what the collector stored, dead-lettered and raised.
# Everything runs on 127.0.0.1 under demo/ and is stopped at the end, however it ends.
#   scripts/demo.sh [--duration 40s] [--work-dir DIR] [--build-dir DIR] [--no-build] [--postgres]
#     --duration   how long the fleets run (default 40s)
#     --work-dir   where its files go (default demo/; emptied first)
#     --build-dir  the build tree (default build/)
#     --no-build   use the binaries already built: no package install, no build
#     --postgres   store in PostgreSQL: a throwaway cluster of its own in demo/pg (PostgreSQL 15
#                  server binaries, OUTPOST_POSTGRES_BIN or /usr/lib/postgresql/15/bin)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
duration=40s
demo="$root/demo"
build="$root/build"
setup=1
postgres=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --work-dir) demo=$(realpath -m "$2"); shift 2 ;;
    --build-dir) build=$(realpath -m "$2"); shift 2 ;;
    --no-build) setup=0; shift ;;
    --postgres) postgres=1; shift ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

if ((setup)); then
  scripts/install-deps.sh
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j "$(nproc)" --target outpost-agent outpost-collector outpost-sim outpost-wire
fi
for bin in agent/outpost-agent collector/outpost-collector firmware-sim/outpost-sim; do
  [[ -x "$build/$bin" ]] || { echo "demo.sh: $build/$bin is not built" >&2; exit 1; }
done
pg_bin=${OUTPOST_POSTGRES_BIN:-/usr/lib/postgresql/15/bin}
if ((postgres)); then
  for bin in initdb postgres pg_isready psql; do
    [[ -x "$pg_bin/$bin" ]] || {
      echo "demo.sh: --postgres needs $pg_bin/$bin (apt-get install postgresql, or set OUTPOST_POSTGRES_BIN)" >&2
      exit 1
    }
  done
  if ((EUID == 0)) && ! id postgres >/dev/null 2>&1; then
    echo "demo.sh: --postgres as root runs PostgreSQL as the postgres user, and there is none" >&2
    exit 1
  fi
fi

rm -rf "$demo"
mkdir -p "$demo"
shown=${demo#"$root/"}        # as the messages name it: demo, or the --work-dir given
shown_build=${build#"$root/"}
# Every process started here is in pids; at exit, however it comes, each is sent SIGTERM
# (the simulators stop their agents; an agent whose simulator died gets SIGTERM from the
# kernel, PR_SET_PDEATHSIG), given 10 s, then SIGKILLed, and waited for. PostgreSQL (with
# --postgres) goes last, once the collector has committed what it held: SIGINT (a fast
# shutdown), 10 s, SIGKILL; its postmaster also dies with this shell (setpriv --pdeathsig).
pids=()
pg_pid=
cleanup() {
  local pid deadline=$((SECONDS + 10))
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [[ -n "$pg_pid" ]] || return 0
  deadline=$((SECONDS + 10))
  kill -INT "$pg_pid" 2>/dev/null || true
  while kill -0 "$pg_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  kill -KILL "$pg_pid" 2>/dev/null || true
  wait "$pg_pid" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# At most one command substitution per command from here on: bash 5.2 runs a trap for a signal
# that arrives during a command's first substitution while it parses the next one, and that
# parse fails ("trap: unexpected EOF while looking for matching `)'"; the script exits 2).

source scripts/lib.sh  # free_port, wait_for
# The prefix that runs a PostgreSQL program: as the postgres user when root (PostgreSQL refuses
# root). Started in the background through it, $! is the program itself (setpriv execs; a shell
# function would leave a subshell between, and a signal to $! would miss the postmaster).
as_pg=(setpriv --pdeathsig SIGKILL)
((EUID != 0)) || as_pg+=(--reuid=postgres --regid=postgres --init-groups)
as_pg+=(--)
pg_up() { "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; }
broker_up() { mosquitto_pub -p "$mqtt_port" -t outpost-demo/ping -n >/dev/null 2>&1; }
collector() { "$build/collector/outpost-collector" --config "$demo/collector.toml" "$@"; }
summary_value() { collector summary 2>/dev/null | awk -v k="$1" 'index($0, k) == 1 {print $NF}'; }
# summary_at_least <line> <n>: the collector's summary shows at least n on that line.
summary_at_least() {
  collector summary 2>/dev/null |
    awk -v k="$1" -v n="$2" 'index($0, k) == 1 {v = $NF} END {exit !(v != "" && v + 0 >= n)}'
}
progress() {  # progress <seconds>: one line of what the collector holds so far
  collector summary 2>/dev/null | awk -v s="$1" '
    index($0, "readings stored") == 1 {r = $NF}
    index($0, "DLQ entries") == 1 {d = $NF}
    index($0, "events ") == 1 {e = $NF}
    END {printf "   %3d s: readings stored %s, DLQ entries %s, events %s\n", s, r, d, e}'
}
manifest_totals() {  # manifest_totals <file> <key>...: numbers from a simulator manifest's totals
  python3 - "$@" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["totals"]
print(" ".join(str(sum(t[k].values()) if isinstance(t[k], dict) else t[k]) for k in sys.argv[2:]))
PY
}
metrics_get() {
  python3 - "$1" <<'PY'
import sys, urllib.request
print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode())
PY
}

mqtt_port=$(free_port)
collector_metrics_port=$(free_port)
console_port=$(free_port)
if ((postgres)); then
  pg_port=$(free_port)
  dsn="host=127.0.0.1 port=$pg_port user=postgres dbname=outpost"
  storage_toml="kind = \"postgres\"
dsn = \"$dsn\"
journal_dir = \"$demo/collector.journal\""
  where="PostgreSQL on 127.0.0.1:$pg_port (a throwaway cluster in $shown/pg, database outpost)"
else
  storage_toml="path = \"$demo/collector.db\""
  where="$shown/collector.db"
fi
cat >"$demo/mosquitto.conf" <<EOF
listener $mqtt_port 127.0.0.1
allow_anonymous true
persistence false
# Outpost needs a deep queue for the collector's persistent session (docs/collector.toml).
max_queued_messages 100000
# Nothing larger than this reaches the collector (twice its mqtt.max_message_bytes: docs/topics.md).
message_size_limit 1048576
EOF
cat >"$demo/collector.toml" <<EOF
[mqtt]
broker = "tcp://127.0.0.1:$mqtt_port"
client_id = "outpost-demo-collector"
reconnect_min = "200ms"
reconnect_max = "1s"
[storage]
$storage_toml
[events]
gap_grace = "5s"
# A threshold rule: an office warmer than 23 degC raises threshold_above; it clears at 22.5.
[rules.warm_office]
sensor = "temp"
above = 23.0
hysteresis = 0.5
[metrics]
listen = "127.0.0.1:$collector_metrics_port"
# The web console (docs/console.md), read-only: no token is set.
[console]
listen = "127.0.0.1:$console_port"
EOF
# The lab fleet: the office scenario with its own site and device ids, fed to real agents.
sed -e 's/^site = "office"/site = "lab"/' -e 's/^device_prefix = "office-"/device_prefix = "lab-"/' \
  firmware-sim/scenarios/small-office.toml >"$demo/lab.toml"

echo
if ((postgres)); then
  # Made for speed, not durability (fsync off): trust authentication on 127.0.0.1 only.
  echo "== 0. PostgreSQL: initdb in $shown/pg, a server on 127.0.0.1:$pg_port"
  mkdir -p "$demo/pg"
  ((EUID != 0)) || chown postgres: "$demo/pg"
  if ! "${as_pg[@]}" "$pg_bin/initdb" -D "$demo/pg/data" -A trust -U postgres -E UTF8 --locale=C \
    --no-sync --no-instructions >"$demo/pg/initdb.log" 2>&1; then
    echo "demo: initdb failed; see $shown/pg/initdb.log (as root, the postgres user must be able to reach $demo)" >&2
    tail -5 "$demo/pg/initdb.log" >&2
    exit 1
  fi
  "${as_pg[@]}" "$pg_bin/postgres" -D "$demo/pg/data" -p "$pg_port" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories="$demo/pg" -c fsync=off -c full_page_writes=off \
    -c synchronous_commit=off -c log_min_messages=warning >"$demo/postgres.log" 2>&1 &
  pg_pid=$!
  wait_for 30 pg_up || { echo "demo: PostgreSQL did not come up; see $shown/postgres.log" >&2; exit 1; }
  "$pg_bin/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -c "CREATE DATABASE outpost" >/dev/null
fi
echo "== 1. mosquitto on 127.0.0.1:$mqtt_port and outpost-collector on $where"
mosquitto -c "$demo/mosquitto.conf" >"$demo/mosquitto.log" 2>&1 &
pids+=($!)
wait_for 10 broker_up
# The binary itself in the background, not the collector() function: $! must be its PID
# (a function would run in a subshell, and step 4's SIGTERM would miss the collector).
"$build/collector/outpost-collector" --config "$demo/collector.toml" >"$demo/collector.log" 2>&1 &
collector_pid=$!
pids+=("$collector_pid")
wait_for 15 grep -q "subscribed to" "$demo/collector.log"
echo "   the web console, while the demo runs: http://127.0.0.1:$console_port/"

echo "== 2. for $duration: 20 office devices publish directly (faults on: malformed payloads of"
echo "      every kind, duplicates, reboots, two network cuts); 3 lab devices send line"
echo "      protocol to 3 real outpost-agent processes (end_to_end, SQLite queue)"
"$build/firmware-sim/outpost-sim" --scenario firmware-sim/scenarios/small-office.toml \
  --broker "tcp://127.0.0.1:$mqtt_port" --devices 20 --batch-size 8 --duration "$duration" --seed 7 \
  --malformed-fraction 0.04 --malformed-kinds all --duplicate-fraction 0.05 \
  --reboot-every 60s --cut-fraction 0.1 --manifest "$demo/office-manifest.json" \
  >"$demo/sim-office.txt" 2>"$demo/sim-office.log" &
office_pid=$!
pids+=("$office_pid")
"$build/firmware-sim/outpost-sim" --scenario "$demo/lab.toml" --mode agent --agents 3 \
  --agent-bin "$build/agent/outpost-agent" --work-dir "$demo/agents" --agent-delivery end_to_end \
  --broker "tcp://127.0.0.1:$mqtt_port" --duration "$duration" --seed 8 \
  --malformed-fraction 0 --duplicate-fraction 0 --manifest "$demo/lab-manifest.json" \
  >"$demo/sim-lab.txt" 2>"$demo/sim-lab.log" &
lab_pid=$!
pids+=("$lab_pid")
start=$SECONDS
while kill -0 "$office_pid" 2>/dev/null || kill -0 "$lab_pid" 2>/dev/null; do
  if (((SECONDS - start) % 10 == 0)); then
    progress $((SECONDS - start)) || true  # a summary refused (busy) shows empty values
  fi
  sleep 1
done
office_rc=0 lab_rc=0
wait "$office_pid" || office_rc=$?
wait "$lab_pid" || lab_rc=$?
if [[ $office_rc -ne 0 || $lab_rc -ne 0 ]]; then
  echo "demo: the simulator failed (exit $office_rc / $lab_rc); see $shown/sim-*.log" >&2
  tail -5 "$demo/sim-office.log" "$demo/sim-lab.log" >&2
  exit 1
fi

read -r office_devices office_sent office_twice malformed < <(manifest_totals \
  "$demo/office-manifest.json" devices readings_sent duplicates_sent malformed)
read -r lab_devices lab_sent < <(manifest_totals "$demo/lab-manifest.json" devices readings_sent)
sent=$((office_sent + lab_sent))
wait_for 30 summary_at_least 'readings stored' "$sent" || true
wait_for 10 summary_at_least 'DLQ entries' "$malformed" || true
echo "== 3. the collector's metrics (http://127.0.0.1:$collector_metrics_port/metrics), a few of them:"
metrics_get "$collector_metrics_port" |
  grep -E '^outpost_collector_(received_total|readings_stored_total|duplicates_total|commits_total|reading_latency_seconds_count) ' |
  sed 's/^/     /'
echo "== 4. SIGTERM: the collector commits what it holds and exits"
kill -TERM "$collector_pid"
collector_rc=0
wait "$collector_pid" || collector_rc=$?
((collector_rc == 0)) || echo "demo: the collector exited $collector_rc; see $shown/collector.log" >&2
# What follows reads the database the collector has closed: everything it took is committed.

stored=$(summary_value 'readings stored')
dlq=$(summary_value 'DLQ entries')
echo
echo "== Summary"
echo "   sent by the simulator ($shown/office-manifest.json, $shown/lab-manifest.json):"
echo "     office, direct:      $office_devices devices, $office_sent readings, $office_twice batches sent twice, $malformed malformed messages"
echo "     lab, through agents: $lab_devices devices, $lab_sent readings"
if [[ "$stored" == "$sent" ]]; then
  verdict="every reading sent is stored, once"
else
  verdict="MISMATCH: $sent sent, $stored stored"
fi
echo "   stored by the collector: $stored of $sent readings ($verdict); $dlq of $malformed malformed messages in the DLQ"
echo
collector summary | sed 's/^/   /'
echo
if ((postgres)); then
  echo "   SQL on the view reading_rows (docs/storage.md, PostgreSQL; what Grafana reads):"
  "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d outpost -c \
    "SELECT device, sensor, time, value FROM reading_rows ORDER BY time DESC LIMIT 3" | sed 's/^/     /'
fi
echo "   devices (first 8):"
collector devices | head -9 | sed 's/^/     /'
echo "   dead-letter queue (first 6):"
collector dlq list --limit 6 2>/dev/null | cut -c1-150 | sed 's/^/     /'
echo
echo "   Explore further:"
echo "     $shown_build/collector/outpost-collector --config $shown/collector.toml query --device office-0001 --sensor temp --format table"
echo "     $shown_build/collector/outpost-collector --config $shown/collector.toml devices | events | dlq list | dlq show ID | summary"
echo "     $shown_build/collector/outpost-collector --config $shown/collector.toml logs --severity warning --since 10m"
echo "     $shown_build/firmware-sim/outpost-sim --help; firmware-sim/scenarios/*.toml"
echo "     $shown_build/common/outpost-wire demo     # the wire format against JSON, and malformed payloads"
if ((postgres)); then
  echo "     the demo's PostgreSQL stops with it; to look again, start it (as the postgres user when root):"
  echo "       $pg_bin/pg_ctl -D $shown/pg/data -o '-p $pg_port -k /tmp' start; psql \"$dsn\""
fi
echo "     the web console: start the collector again and open http://127.0.0.1:$console_port/"
echo "       $shown_build/collector/outpost-collector --config $shown/collector.toml"
echo "     metrics while running: the collector's on http://127.0.0.1:$collector_metrics_port/metrics ([metrics] listen"
echo "     in $shown/collector.toml); an agent serves its own when its config sets [metrics] listen"
if ((postgres)); then
  echo "   Logs: $shown/collector.log, $shown/postgres.log, $shown/sim-*.log, $shown/agents/agent-*.log"
  echo "   The demo's PostgreSQL stops with it; its files stay in $shown/pg."
else
  echo "   Logs: $shown/collector.log, $shown/sim-*.log, $shown/agents/agent-*.log"
fi
