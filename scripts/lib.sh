# Shell helpers shared by scripts/demo.sh and bench/report.sh (sourced, not run).

# A loopback TCP port that was free a moment ago. These scripts run one at a time, outside
# ctest's parallel runs; the test suite itself never picks ports this way (tests/support).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for <seconds> <command...>: polls a condition until it holds or the deadline passes
# (exit 1); never a fixed sleep.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
