#!/usr/bin/env bash
# The README's first command: installs dependencies, builds, and runs the system end to end:
# a local mosquitto, an outpost-collector on an SQLite file, an outpost-agent fed by a
# simulated sensor program (with some malformed lines), malformed MQTT payloads, a broker
# outage in the middle, and a summary of what the collector stored; then the codec demo.
# Everything it starts runs under demo/ on loopback and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target outpost-agent outpost-collector outpost-wire

demo="$root/demo"
rm -rf "$demo"
mkdir -p "$demo"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {  # wait_for <seconds> <command...>: poll a condition, never a fixed sleep
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}
broker_up() { mosquitto_pub -p "$mqtt_port" -t outpost-demo/ping -n >/dev/null 2>&1; }

mqtt_port=$(free_port)
udp_port=$(free_port)
metrics_port=$(free_port)
collector_metrics_port=$(free_port)
cat >"$demo/mosquitto.conf" <<EOF
listener $mqtt_port 127.0.0.1
allow_anonymous true
persistence false
EOF
cat >"$demo/agent.toml" <<EOF
[device]
site = "demo-site"
id = "gw-0042"
[inputs]
udp_listen = "127.0.0.1:$udp_port"
unix_socket = "$demo/agent.sock"
[store]
path = "$demo/agent.db"
[batch]
max_delay = "500ms"
[mqtt]
broker = "tcp://127.0.0.1:$mqtt_port"
reconnect_min = "1s"
reconnect_max = "2s"
[system]
interval = "0s"
[metrics]
listen = "127.0.0.1:$metrics_port"
EOF

cat >"$demo/collector.toml" <<EOF
[mqtt]
broker = "tcp://127.0.0.1:$mqtt_port"
client_id = "outpost-demo-collector"
reconnect_min = "200ms"
reconnect_max = "1s"
[storage]
path = "$demo/collector.db"
[metrics]
listen = "127.0.0.1:$collector_metrics_port"
EOF
collector() { build/collector/outpost-collector --config "$demo/collector.toml" "$@"; }
stored_readings() { collector summary 2>/dev/null | awk '/readings stored/ {print $3}'; }

start_broker() {
  mosquitto -c "$demo/mosquitto.conf" >>"$demo/mosquitto.log" 2>&1 &
  broker_pid=$!
  pids+=("$broker_pid")
  wait_for 10 broker_up
}
start_subscriber() {
  mosquitto_sub -p "$mqtt_port" -t 'outpost/v1/#' -q 1 -F '%t %x' >>"$demo/received.txt" 2>/dev/null &
  pids+=($!)
}

echo
echo "== 1. mosquitto on 127.0.0.1:$mqtt_port, outpost-collector (demo/collector.db), outpost-agent (demo/agent.db)"
start_broker
start_subscriber
build/collector/outpost-collector --config "$demo/collector.toml" >"$demo/collector.log" 2>&1 &
collector_pid=$!
pids+=("$collector_pid")
wait_for 10 grep -q "connected to" "$demo/collector.log"
build/agent/outpost-agent --config "$demo/agent.toml" >"$demo/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
wait_for 10 grep -q "connected to" "$demo/agent.log"

# A simulated sensor program: fire-and-forget line protocol over UDP, plus a few bad lines.
send() { printf '%s\n' "$@" >"/dev/udp/127.0.0.1/$udp_port"; }
sensor_round() {
  local i=$1
  send "env,room=lab,unit=Cel temperature=$((20 + i % 3)).$((i % 10))" \
       "env,room=lab humidity=4$((i % 10)).5,co2=$((410 + i))i,door_open=$([[ $((i % 4)) -eq 0 ]] && echo true || echo false)"
}
echo "== 2. a sensor program sends 20 rounds of readings, 3 malformed lines and 2 log lines"
for i in $(seq 1 10); do sensor_round "$i"; done
send "env,room=lab temperature=hot" "this is not line protocol" "env,room=lab co2=99999999999999999999i"
send "warn: fan speed low | fan=2 rpm=900" "info: calibration done"

echo "== 2b. three malformed MQTT payloads straight to the broker (the collector dead-letters them)"
mosquitto_pub -p "$mqtt_port" -q 1 -t outpost/v1/demo-site/gw-0042/data -m 'not protobuf at all'
mosquitto_pub -p "$mqtt_port" -q 1 -t outpost/v1/demo-site/gw-0042/data -m '{"temperature": 21.5}'
build/common/outpost-wire example | xxd -r -p | mosquitto_pub -p "$mqtt_port" -q 1 -t outpost/v1/demo-site/gw-0099/data -s

echo "== 3. broker outage: mosquitto stopped, 10 more rounds sent, mosquitto restarted"
wait_for 10 grep -q '/data ' "$demo/received.txt"
kill "$broker_pid"
wait "$broker_pid" 2>/dev/null || true
wait_for 10 grep -q "connection to" "$demo/agent.log"
for i in $(seq 11 20); do sensor_round "$i"; done
build/agent/outpost-agent --config "$demo/agent.toml" status | sed 's/^/     /'
start_broker
start_subscriber
expected=$((20 * 4))
count_readings() {
  local n=0
  while read -r topic hex; do
    [[ $topic == */gw-0042/data ]] || continue
    n=$((n + $( (echo "$hex" | build/common/outpost-wire decode --hex - 2>/dev/null || true) | grep -o '"sensor"' | wc -l)))
  done < <(sort -u "$demo/received.txt")
  echo "$n"
}
wait_for 20 test "$(count_readings)" -ge "$expected" || true
wait_for 20 test "$(stored_readings)" -ge "$expected" || true

echo "== 4. the agent's metrics (http://127.0.0.1:$metrics_port/metrics), a few of them:"
python3 - "$metrics_port" <<'PY' | grep -E '^outpost_agent_(accepted|rejected_lines|acked|queue_items|reconnects)' | sed 's/^/     /'
import sys, urllib.request
print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode())
PY

echo "== 5. SIGTERM: the agent persists, delivers, publishes 'offline' and exits; the collector drains"
kill -TERM "$agent_pid"
wait "$agent_pid" || true
wait_for 10 bash -c "build/collector/outpost-collector --config '$demo/collector.toml' devices | grep -q offline" || true
kill -TERM "$collector_pid"
wait "$collector_pid" || true

echo
echo "== Summary"
readings=$(count_readings)
messages=$(sort -u "$demo/received.txt" | grep -c '/gw-0042/data ' || true)
logs=$(sort -u "$demo/received.txt" | grep -c '/logs ' || true)
echo "   readings sent: $expected, seen on the broker: $readings in $messages data messages of gw-0042 (deduplicated by epoch and seq)"
echo "   log messages: $logs; malformed lines rejected by the agent: $(grep -c 'rejected input line' "$demo/agent.log" || true)"
grep 'rejected input line' "$demo/agent.log" | sed 's/.*rejected input line/     line/' | cut -c1-110
echo "   last status: $(mosquitto_sub -p "$mqtt_port" -t 'outpost/v1/demo-site/gw-0042/status' -C 1 -W 2 -F '%x' 2>/dev/null |
  build/common/outpost-wire decode --hex - | grep -o '"state":"[a-z]*"')"
echo "   one message, decoded:"
for hex in $(grep '/gw-0042/data ' "$demo/received.txt" | cut -d' ' -f2); do
  if decoded=$(echo "$hex" | build/common/outpost-wire decode --hex - 2>/dev/null); then
    echo "$decoded" | cut -c1-300 | sed 's/^/     /'
    break
  fi
done
echo
echo "   Files: demo/agent.log, demo/agent.db (the queue), demo/received.txt (topic + hex payload)."
echo
echo "== The collector's store (demo/collector.db)"
collector summary | sed 's/^/   /'
echo "   devices:"
collector devices | sed 's/^/     /'
echo "   dead-letter queue:"
collector dlq list 2>/dev/null | cut -c1-150 | sed 's/^/     /'
echo "   events:"
collector events | sed 's/^/     /'
echo
echo "   Explore further:"
echo "     build/collector/outpost-collector --config demo/collector.toml query --device gw-0042 --format csv"
echo "     build/collector/outpost-collector --config demo/collector.toml devices | events | dlq list | dlq show ID"
echo "     metrics while running: GET /metrics on the agent's and collector's [metrics] listen address"
echo
echo "== 6. The wire format: compactness, and malformed payloads refused with reason codes"
build/common/outpost-wire demo
