#!/usr/bin/env bash
# Measures the whole system on this machine and writes docs/bench/report.md with tables and
# gnuplot PNGs beside it: bytes per reading against JSON; collector latency (p50/p90/p99/max)
# at fixed rates; collector backlog and sustained throughput; end-to-end readings/s against
# fleet size (outpost-sim -> mosquitto -> outpost-collector -> SQLite, checked against the
# simulator's manifest); the agent's own benchmark table and its CPU and memory against input
# rate. Each section names its command.
#   bench/report.sh [--quick] [--out DIR]     (--quick: short runs, to check the runner)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/docs/bench"
quick=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "report.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

scripts/install-deps.sh --bench
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target codec_bench collector_bench agent_bench outpost-sim \
  outpost-collector outpost-agent >/dev/null
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "report: $*" >&2; }
result() {  # result <file> <key>: a value from collector_bench's RESULT line
  sed -n 's/^RESULT //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
source scripts/lib.sh  # free_port, wait_for

if ((quick)); then
  rates=(10000 50000)
  lat_seconds=3
  messages=4000
  fleets=(50 200)
  fleet_seconds=5
  agent_rates=100,5000
  agent_seconds=3
else
  rates=(10000 25000 50000 100000 200000)
  lat_seconds=20
  messages=40000
  fleets=(100 250 500 1000 2000)
  fleet_seconds=30
  agent_rates=10,100,1000,5000,20000,50000,100000
  agent_seconds=15
fi

report="$out/report.md"
{
  echo "# Benchmark report"
  echo
  echo "Written by \`bench/report.sh$( ((quick)) && echo ' --quick')\` on $(date -u +%Y-%m-%d), $(nproc) cores"
  echo "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load before the run: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Broker, simulator or publishers, and collector share these cores in every run."
  echo
} >"$report"

# --- 1. Wire size
log "wire size"
build/bench/codec_bench --benchmark_filter=Size --benchmark_format=json 2>/dev/null >"$work/size.json"
python3 - "$work/size.json" >>"$report" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))["benchmarks"][0]
print("## Bytes per reading on the wire\n")
print("`build/bench/codec_bench --benchmark_filter=Size`: the typical batch of docs/targets.md (5 sensors, 1 s period, 50 readings).\n")
print("| encoding | bytes per reading |\n|---|---|")
print(f"| Outpost (nanopb) | {b['outpost_bytes/reading']:.2f} |")
print(f"| compact JSON of the same readings | {b['json_bytes/reading']:.2f} |")
print(f"\nTarget: <= 12 bytes per reading.\n")
PY

# --- 2. Collector latency against rate
log "collector latency at ${rates[*]} readings/s"
echo "rate p50 p90 p99 max" >"$out/latency.dat"
for rate in "${rates[@]}"; do
  build/bench/collector_bench --latency-only --rate "$rate" --seconds "$lat_seconds" \
    >"$work/lat-$rate.txt" 2>&1 || true
  echo "$rate $(result "$work/lat-$rate.txt" p50_ms) $(result "$work/lat-$rate.txt" p90_ms)" \
    "$(result "$work/lat-$rate.txt" p99_ms) $(result "$work/lat-$rate.txt" max_ms)" >>"$out/latency.dat"
done
{
  echo "## Collector latency at fixed rates"
  echo
  echo "\`build/bench/collector_bench --latency-only --rate R --seconds $lat_seconds\`: 50 readings per"
  echo "message, every reading stamped when published; latency = the collector's commit ack for"
  echo "the message arriving at the bench, minus the reading time (an upper bound of reading to"
  echo "committed row). Default commit interval 100 ms."
  echo
  echo "| readings/s | p50 ms | p90 ms | p99 ms | max ms |"
  echo "|---|---|---|---|---|"
  tail -n +2 "$out/latency.dat" | while read -r r a b c d; do echo "| $r | $a | $b | $c | $d |"; done
  echo
  echo "Target: p99 <= 250 ms at 50,000 readings/s."
  echo
  echo "![latency](latency.png)"
  echo
} >>"$report"
gnuplot <<EOF
set terminal pngcairo size 800,480
set output "$out/latency.png"
set title "outpost-collector: reading time to commit ack"
set xlabel "readings/s"
set ylabel "ms"
set key top left
set grid
plot "$out/latency.dat" using 1:2 with linespoints title "p50", \
     "" using 1:3 with linespoints title "p90", \
     "" using 1:4 with linespoints title "p99", \
     "" using 1:5 with linespoints title "max", \
     250 with lines dashtype 2 title "target p99"
EOF

# --- 3. Collector backlog and sustained throughput
log "collector throughput ($messages messages)"
build/bench/collector_bench --messages "$messages" --seconds "$lat_seconds" >"$work/throughput.txt" 2>&1 || true
{
  echo "## Collector throughput"
  echo
  echo "\`build/bench/collector_bench --messages $messages --seconds $lat_seconds\` (pre-encoded batches of 50"
  echo "readings, 2 QoS 1 publishers, zero loss checked):"
  echo
  sed -n '/^| measure/,/^$/p' "$work/throughput.txt"
  echo "Target: >= 600,000 readings/s sustained end to end (1,000,000 stays the goal; docs/targets.md)."
  echo
} >>"$report"

# --- 4. End to end against fleet size: outpost-sim -> mosquitto -> outpost-collector
echo "devices offered_rps stored_rps lag_s lost" >"$out/fleet.dat"
for n in "${fleets[@]}"; do
  log "fleet of $n devices"
  d="$work/fleet-$n"
  mkdir -p "$d"
  port=$(free_port)
  mport=$(free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n' \
    "$port" >"$d/mosquitto.conf"
  mosquitto -c "$d/mosquitto.conf" >"$d/mosquitto.log" 2>&1 &
  broker=$!
  pids+=("$broker")
  wait_for 10 mosquitto_pub -p "$port" -t ping -n 2>/dev/null
  printf '[mqtt]\nbroker = "tcp://127.0.0.1:%s"\nclient_id = "report"\n[storage]\npath = "%s"\n[metrics]\nlisten = "127.0.0.1:%s"\n' \
    "$port" "$d/c.db" "$mport" >"$d/c.toml"
  build/collector/outpost-collector --config "$d/c.toml" >"$d/c.log" 2>&1 &
  collector=$!
  pids+=("$collector")
  wait_for 15 grep -q "subscribed to" "$d/c.log"
  start=$(date +%s.%N)
  build/firmware-sim/outpost-sim --scenario firmware-sim/scenarios/factory-floor.toml \
    --broker "tcp://127.0.0.1:$port" --devices "$n" --duration "${fleet_seconds}s" --seed 1 \
    --malformed-fraction 0 --duplicate-fraction 0 --out-of-order-fraction 0 \
    --reboot-every 0s --storm-every 0s --burst-every 0s --manifest "$d/m.json" \
    >"$d/sim.txt" 2>"$d/sim.log" || true
  sim_end=$(date +%s.%N)
  sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["readings_sent"])' "$d/m.json" 2>/dev/null || echo 0)
  stored() { build/collector/outpost-collector --config "$d/c.toml" summary 2>/dev/null | awk '/^readings stored/ {print $3}'; }
  wait_for 120 test "$(stored)" -ge "$sent" || true
  done_at=$(date +%s.%N)
  got=$(stored)
  kill "$collector" "$broker" 2>/dev/null || true
  wait "$collector" "$broker" 2>/dev/null || true
  python3 - "$n" "$sent" "$got" "$start" "$sim_end" "$done_at" "$fleet_seconds" >>"$out/fleet.dat" <<'PY'
import sys
n, sent, got = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
start, sim_end, done, dur = map(float, sys.argv[4:8])
lag = done - sim_end
print(n, round(sent / dur), round(got / (dur + lag)), round(lag, 1), sent - got)
PY
done
{
  echo "## End to end against fleet size"
  echo
  echo "For each N: a fresh mosquitto and outpost-collector, then \`outpost-sim --scenario"
  echo "firmware-sim/scenarios/factory-floor.toml --devices N --duration ${fleet_seconds}s\` with its faults"
  echo "off (22 readings per device every 100 ms, 220 per message, one MQTT connection per"
  echo "device). Offered = readings the simulator had acknowledged / duration; stored = readings"
  echo "in the collector's database / (duration + lag); lag = seconds from the simulator's end"
  echo "(its final flush included) until the last one was stored; lost = sent - stored."
  echo
  echo "| devices | offered readings/s | stored readings/s | lag s | lost |"
  echo "|---|---|---|---|---|"
  tail -n +2 "$out/fleet.dat" | while read -r a b c e f; do echo "| $a | $b | $c | $e | $f |"; done
  echo
  echo "![fleet](fleet.png)"
  echo
} >>"$report"
gnuplot <<EOF
set terminal pngcairo size 800,480
set output "$out/fleet.png"
set title "simulator -> mosquitto -> collector -> SQLite"
set xlabel "devices (one MQTT connection each)"
set ylabel "readings/s"
set key top left
set grid
plot "$out/fleet.dat" using 1:2 with linespoints title "offered", \
     "" using 1:3 with linespoints title "stored"
EOF

# --- 5. The agent's own benchmark
log "agent"
{
  echo "## Agent"
  echo
  echo "\`build/bench/agent_bench$( ((quick)) && echo ' --backlog 100000 --burst 50000')\`:"
  echo
  if ((quick)); then
    build/bench/agent_bench --backlog 100000 --burst 50000 >"$work/agent.txt" 2>"$work/agent.err" || true
  else
    build/bench/agent_bench >"$work/agent.txt" 2>"$work/agent.err" || true
  fi
  grep '^|' "$work/agent.txt" || echo "(agent_bench failed)"
  echo
} >>"$report"

# --- 6. The agent's CPU and memory against input rate
log "agent rate sweep ($agent_rates readings/s)"
build/bench/agent_bench --sweep "$agent_rates" --sweep-seconds "$agent_seconds" \
  >"$work/sweep.txt" 2>"$work/sweep.err" || true
echo "rate cpu_percent rss_mb peak_mb pss_mb" >"$out/agent.dat"
sed -n 's/^RESULT //p' "$work/sweep.err" | while read -r line; do
  v() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  echo "$(v rate) $(v cpu_percent) $(v rss_mb) $(v peak_mb) $(v pss_mb)"
done >>"$out/agent.dat"
{
  echo "## Agent CPU and memory against input rate"
  echo
  echo "\`build/bench/agent_bench --sweep $agent_rates --sweep-seconds $agent_seconds\`: a fresh"
  echo "agent and broker per rate; readings over UDP in datagrams of up to 50 lines every 10 ms;"
  echo "CPU = the agent's CPU time (all threads) / wall time, as % of one core; RSS at the end"
  echo "and its peak (VmHWM); PSS shares the libraries' pages among the processes using them."
  echo
  grep '^|' "$work/sweep.txt" || echo "(agent_bench --sweep failed)"
  echo
  echo "Targets (docs/targets.md, at 1,000 readings/s): CPU <= 2 % of one core, RSS <= 8 MB."
  echo
  echo "![agent](agent.png)"
  echo
} >>"$report"
gnuplot <<EOF
set terminal pngcairo size 800,480
set output "$out/agent.png"
set title "outpost-agent: CPU and memory against input rate"
set xlabel "readings/s"
set logscale x
set ylabel "CPU, % of one core"
set y2label "MB"
set y2tics
set ytics nomirror
set yrange [0:*]
set y2range [0:*]
set key top left
set grid
plot "$out/agent.dat" using 1:2 axes x1y1 with linespoints title "CPU %", \
     "" using 1:3 axes x1y2 with linespoints title "RSS MB", \
     "" using 1:5 axes x1y2 with linespoints title "PSS MB"
EOF
# --- 7. Against the targets of docs/targets.md, from the runs above
log "targets"
python3 - "$work" "$report" >>"$report" <<'PY'
import json, os, sys
work = sys.argv[1]
def result(path):
    """key=value pairs of the last RESULT line in a file; {} if none."""
    try:
        lines = [l for l in open(path) if l.startswith("RESULT ")]
    except OSError:
        return {}
    if not lines:
        return {}
    return {k: float(v) for k, v in (kv.split("=", 1) for kv in lines[-1].split()[1:])}
size = json.load(open(os.path.join(work, "size.json")))["benchmarks"][0]["outpost_bytes/reading"]
lat = result(os.path.join(work, "lat-50000.txt"))
thr = result(os.path.join(work, "throughput.txt"))
agent = result(os.path.join(work, "agent.err"))
# (what, measured, unit, target, higher is better, what limits it when missed)
rows = [
    ("bytes per reading on the wire", size, "B", 12, False, ""),
    ("collector p99 latency at 50,000 readings/s", lat.get("p99_ms"), "ms", 250, False, ""),
    ("collector sustained readings/s, zero loss", thr.get("stored_rps"), "/s", 1_000_000, True,
     "the collector stores what the two publishers get through mosquitto on the same 2 cores "
     "(docs/BENCHMARKS.md, collector: what limits it)"),
    ("agent accept rate with persistence", agent.get("accept_kps", 0) * 1000 or None, "/s", 200_000, True,
     "the agent's single store thread, about 4-5 us of CPU per reading "
     "(docs/BENCHMARKS.md, agent: what changed and why)"),
    ("agent backlog drain", agent.get("drain_kps", 0) * 1000 or None, "/s", 200_000, True,
     "the same store thread, and Paho's one send thread"),
    ("agent CPU at 1,000 readings/s", agent.get("cpu_percent"), "% of a core", 2, False, ""),
    ("agent RSS at 1,000 readings/s", agent.get("rss_mb"), "MB", 8, False,
     "shared libraries' pages (libcrypto, libstdc++, libc, SQLite: docs/BENCHMARKS.md)"),
    ("agent PSS at 1,000 readings/s", agent.get("pss_mb"), "MB", 5, False, ""),
]
print("## Against the targets\n")
print("The targets of docs/targets.md against this run's figures (a target missed says by how much, and")
print("what limits it as profiled in docs/BENCHMARKS.md).\n")
print("| measure | this run | target | verdict | what limits it |")
print("|---|---|---|---|---|")
for what, value, unit, target, higher, limit in rows:
    if value is None:
        print(f"| {what} | (not measured) | {target:,} {unit} | - | |")
        continue
    met = value >= target if higher else value <= target
    if met:
        verdict = "met"
    elif higher:
        verdict = f"missed: reaches {value / target:.0%} of it"
    else:
        verdict = f"missed by {value / target - 1:.0%}"
    shown = f"{value:,.0f}" if value >= 1000 else f"{value:.2f}"
    print(f"| {what} | {shown} {unit} | {'>=' if higher else '<='} {target:,} {unit} | {verdict} | {'' if met else limit} |")
print()
PY
echo "Load average at the end of the run: $(cut -d' ' -f1-3 /proc/loadavg) (above 0 means something else shared the cores)." >>"$report"
log "wrote $report and its PNGs"
