#!/usr/bin/env bash
# A simulated fleet through N collectors (one shared group) into PostgreSQL, on this machine:
# mosquitto, a durable throwaway PostgreSQL cluster (fsync on), N outpost-collector processes
# and outpost-sim (bench/fleet-5-sensors.toml: 5 sensors a device, once a second), all on
# 127.0.0.1. When the fleet has stopped and the collectors have stored what it sent, prints the
# readings sent (the simulator's manifest) against the rows in PostgreSQL, the duplicates and
# DLQ entries, and the CPU of each part over the run (utime + stime from /proc; the simulator's
# from its own rusage). Exit 1 if a reading is missing or doubled.
#   bench/fleet_postgres.sh [--devices 10000] [--processes 2] [--connections 0] [--batch-size 5]
#                           [--collectors 3] [--duration 60s] [--build-dir build] [--keep]
#     --devices      simulated devices
#     --processes    simulator shard processes (outpost-sim --processes)
#     --connections  MQTT connections the devices share (0: one per device, with its last will)
#     --batch-size   readings per data message (5: one message a second a device)
#     --collectors   outpost-collector processes, all in the shared group "fleet"
#     --duration     how long the devices send
#     --keep         keep the work directory (/tmp/outpost_fleet_PID) with the logs
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
devices=10000 processes=2 connections=0 batch=5 collectors=3 duration=60s keep=0
build="$root/build"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --devices) devices=$2; shift 2 ;;
    --processes) processes=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --batch-size) batch=$2; shift 2 ;;
    --collectors) collectors=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --build-dir) build=$(realpath -m "$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fleet_postgres.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
pg_bin=${OUTPOST_POSTGRES_BIN:-/usr/lib/postgresql/15/bin}
for bin in "$build/collector/outpost-collector" "$build/firmware-sim/outpost-sim" \
  "$pg_bin/initdb" "$pg_bin/postgres" "$pg_bin/psql"; do
  [[ -x "$bin" ]] || { echo "fleet_postgres.sh: $bin is not there (build it first)" >&2; exit 1; }
done

work=/tmp/outpost_fleet_$$
rm -rf "$work"
mkdir -p "$work"
pids=()
pg_pid=
cleanup() {
  local pid deadline=$((SECONDS + 30))
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "$pg_pid" ]]; then
    kill -INT "$pg_pid" 2>/dev/null || true
    wait "$pg_pid" 2>/dev/null || true
  fi
  ((keep)) || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

source scripts/lib.sh  # free_port, wait_for
# The command prefix that runs a PostgreSQL program; started in the background through it,
# $! is the program itself (setpriv execs; a shell function would leave a subshell between).
as_pg=(setpriv --pdeathsig SIGKILL)
((EUID != 0)) || as_pg+=(--reuid=postgres --regid=postgres --init-groups)
as_pg+=(--)
pg_up() { "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; }
sql() { "$pg_bin/psql" -qAt -h 127.0.0.1 -p "$pg_port" -U postgres -d fleet -c "$1"; }
# cpu <pid>...: CPU seconds (utime + stime) of each pid and its children, summed.
cpu() {
  python3 - "$@" <<'PY'
import os, sys
want = {int(p) for p in sys.argv[1:]}
tick = os.sysconf("SC_CLK_TCK")
total = 0.0
for name in os.listdir("/proc"):
    if not name.isdigit():
        continue
    try:
        stat = open(f"/proc/{name}/stat").read()
    except OSError:
        continue
    fields = stat[stat.rindex(")") + 2:].split()
    if int(name) in want or int(fields[1]) in want:
        total += (int(fields[11]) + int(fields[12])) / tick
print(f"{total:.2f}")
PY
}
metric_sum() {  # metric_sum <name>: the metric summed over the collectors
  python3 - "$1" "${metrics_ports[@]}" <<'PY'
import sys, urllib.request
total = 0.0
for port in sys.argv[2:]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    total += sum(float(l.split()[-1]) for l in text.splitlines() if l.split(" ")[0] == sys.argv[1])
print(f"{total:.0f}")
PY
}
all_stored() { [[ $(sql "SELECT count(*) FROM readings") -ge $sent ]]; }

echo "== PostgreSQL (durable: fsync on), mosquitto, $collectors collectors; load: $(uptime)"
pg_port=$(free_port)
mkdir -p "$work/pg"
((EUID != 0)) || chown postgres: "$work/pg"
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
  --no-instructions >"$work/pg/initdb.log" 2>&1
"${as_pg[@]}" "$pg_bin/postgres" -D "$work/pg/data" -p "$pg_port" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$work/pg" -c shared_buffers=256MB -c max_wal_size=4GB \
  -c log_min_messages=warning >"$work/postgres.log" 2>&1 &
pg_pid=$!
wait_for 30 pg_up
"$pg_bin/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -c "CREATE DATABASE fleet"

mqtt_port=$(free_port)
cat >"$work/mosquitto.conf" <<EOF
listener $mqtt_port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 1000
EOF
((EUID != 0)) || echo "user root" >>"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
broker_pid=$!
pids+=("$broker_pid")
broker_up() { mosquitto_pub -p "$mqtt_port" -t fleet/ping -n >/dev/null 2>&1; }
wait_for 10 broker_up

collector_pids=()
metrics_ports=()
for ((i = 0; i < collectors; i++)); do
  port=$(free_port)
  metrics_ports+=("$port")
  cat >"$work/collector-$i.toml" <<EOF
[mqtt]
broker = "tcp://127.0.0.1:$mqtt_port"
client_id = "fleet-collector-$i"
shared_group = "fleet"
[storage]
kind = "postgres"
dsn = "host=127.0.0.1 port=$pg_port user=postgres dbname=fleet"
journal_dir = "$work/journal-$i"
[metrics]
listen = "127.0.0.1:$port"
EOF
  "$build/collector/outpost-collector" --config "$work/collector-$i.toml" \
    >"$work/collector-$i.log" 2>&1 &
  collector_pids+=($!)
  pids+=($!)
  wait_for 60 grep -qs "subscribed to" "$work/collector-$i.log"
done

echo "== outpost-sim: $devices devices x 5 sensors at 1 s, batch $batch, $processes processes," \
  "connections $connections, for $duration"
collectors_before=$(cpu "${collector_pids[@]}")
pg_before=$(cpu "$pg_pid")
broker_before=$(cpu "$broker_pid")
started=$SECONDS
/usr/bin/time -f "%U %S %M" -o "$work/sim.time" "$build/firmware-sim/outpost-sim" \
  --scenario bench/fleet-5-sensors.toml --broker "tcp://127.0.0.1:$mqtt_port" \
  --devices "$devices" --processes "$processes" --connections "$connections" \
  --batch-size "$batch" --duration "$duration" --manifest "$work/manifest.json" \
  >"$work/sim.txt" 2>"$work/sim.log" &
sim_pid=$!
pids+=("$sim_pid")
sim_rc=0
wait "$sim_pid" || sim_rc=$?
sim_s=$((SECONDS - started))
sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["readings_sent"])' \
  "$work/manifest.json")
wait_for 300 all_stored || true
store_s=$((SECONDS - started))
collectors_cpu=$(cpu "${collector_pids[@]}")
pg_cpu=$(cpu "$pg_pid")
broker_cpu=$(cpu "$broker_pid")
each=()
for pid in "${collector_pids[@]}"; do each+=("$(cpu "$pid")"); done
rows=$(sql "SELECT count(*) FROM readings")
keys=$(sql "SELECT count(*) FROM batches WHERE kind = 0")
dups=$(metric_sum outpost_collector_duplicates_total)
dlq=$(metric_sum outpost_collector_dlq_total)
deadlocks=$(cat "$work"/collector-*.log | grep -c "deadlock detected" || true)
read -r sim_user sim_sys sim_rss <"$work/sim.time"
tail -3 "$work/sim.txt" | sed 's/^/   sim: /'

python3 - "$sent" "$rows" "$keys" "$dups" "$dlq" "$sim_s" "$store_s" "$collectors" \
  "$collectors_before" "$collectors_cpu" "$pg_before" "$pg_cpu" "$broker_before" "$broker_cpu" \
  "$sim_user" "$sim_sys" "$devices" "$batch" "$sim_rss" "${each[*]}" "$deadlocks" <<'PY'
import sys
(sent, rows, keys, dups, dlq, sim_s, store_s, n, c0, c1, p0, p1, b0, b1, su, ss, devices, batch,
 rss, each, deadlocks) = sys.argv[1:22]
sent, rows, keys, sim_s, store_s = int(sent), int(rows), int(keys), int(sim_s), int(store_s)
coll, pg, broker = float(c1) - float(c0), float(p1) - float(p0), float(b1) - float(b0)
sim = float(su) + float(ss)
us = lambda c: 1e6 * c / max(rows, 1)
core = lambda c: 100 * c / max(store_s, 1)
print(f"   devices {devices}, readings sent {sent}, rows in PostgreSQL {rows} ({keys} messages), "
      f"duplicates {dups}, DLQ {dlq}; commits retried after a deadlock between collectors "
      f"{deadlocks}")
print(f"   {sent / max(sim_s, 1):.0f} readings/s for {sim_s} s (the simulator's run, connects and "
      f"stop included); all stored {store_s} s after the start")
print(f"   CPU over the run, % of one core / us per reading: collectors {core(coll):.0f} % / "
      f"{us(coll):.2f} (each, s: {each}), PostgreSQL {core(pg):.0f} % / {us(pg):.2f}, "
      f"mosquitto {core(broker):.0f} % / {us(broker):.2f}, outpost-sim {core(sim):.0f} % / "
      f"{us(sim):.2f} (max RSS of a shard {int(rss) // 1024} MB)")
print(f"RESULT devices={devices} batch={batch} collectors={n} sent={sent} rows={rows} "
      f"duplicates={dups} dlq={dlq} deadlocks={deadlocks} seconds={sim_s} readings_per_s={sent / max(sim_s, 1):.0f} "
      f"collectors_us={us(coll):.3f} pg_us={us(pg):.3f} broker_us={us(broker):.3f} "
      f"sim_us={us(sim):.3f}")
PY
if ((sim_rc != 0)); then
  echo "FAILED: outpost-sim exited $sim_rc; $work/sim.log:" >&2
  tail -5 "$work/sim.log" >&2
  exit 1
fi
if [[ "$rows" != "$sent" ]]; then
  echo "FAILED: $sent readings sent, $rows stored" >&2
  exit 1
fi
echo "every reading sent is stored, once"
