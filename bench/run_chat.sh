#!/usr/bin/env bash
# Chat relay fan-out benchmark: switchboard's chat room against the Python
# reference relay (UDP) and `ncat --chat` (TCP), side by side in one run.
#
#   bench/run_chat.sh [RUNS]          (default 5 runs per case, alternating)
#   bench/run_chat.sh RUNS --sends    only compare ways to issue a fan-out's sends
#                                     (bench/chat_raw_relay.ts) with switchboard;
#                                     KINDS="raw-all python" picks the relays
#
# Every run starts a fresh relay (a relay remembers members, so reusing one
# would add the previous run's dead members). Member 0 sends as fast as the
# relay accepts (at most 64 messages in flight), the other members count
# deliveries; then an open-loop pass sends at fixed fractions of the rate the
# Python relay sustained, to show loss. Figures are medians; CPU is the
# relay's user+system time per delivery, read from /proc.
set -euo pipefail

RUNS=${1:-5}
MODE=${2:-all}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
# The Deno binary itself: node_modules/.bin/deno may be a Node launcher, and
# killing a launcher leaves its deno running.
DENO=${DENO:-$("$ROOT/node_modules/.bin/deno" eval "console.log(Deno.execPath())")}
PY_REF=${PY_REF:-/work/shared/reference/py_chat_udp.py}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-chat.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

gcc -O2 -Wall -o "$WORK/udp_load" "$HERE/chat_udp_load.c"
gcc -O2 -Wall -o "$WORK/tcp_load" "$HERE/chat_tcp_load.c"
command -v ncat >/dev/null || { echo "run_chat.sh: ncat is required" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

wait_udp() { # a relay answers nothing to a probe, so wait for the bound port instead
  for _ in $(seq 100); do
    ss -Hlun "sport = :$1" | grep -q . && return 0
    sleep 0.05
  done
  echo "run_chat.sh: nothing listening on udp port $1" >&2
  exit 1
}

wait_tcp() {
  for _ in $(seq 100); do
    ss -Hltn "sport = :$1" | grep -q . && return 0
    sleep 0.05
  done
  echo "run_chat.sh: nothing listening on tcp port $1" >&2
  exit 1
}

# start_relay KIND PORT -> sets RELAY_PID
start_relay() {
  local kind=$1 port=$2
  case $kind in
    python)
      python3 "$PY_REF" "$port" &
      RELAY_PID=$!
      wait_udp "$port"
      ;;
    switchboard-udp | switchboard-tcp)
      local transport=${kind#switchboard-}
      cat >"$WORK/chat.toml" <<EOF
[daemon]
log_level = "warn"
[[listener]]
name = "bench"
service = "chat"
transport = "$transport"
listen = "127.0.0.1:$port"
max_members = 1000
member_rate = "100000000/s"
member_burst = 1000000
EOF
      if [ "$transport" = tcp ]; then echo 'max_connections = 1000' >>"$WORK/chat.toml"; fi
      "$DENO" run -A --quiet "$ROOT/main.ts" serve -c "$WORK/chat.toml" &
      RELAY_PID=$!
      if [ "$transport" = tcp ]; then wait_tcp "$port"; else wait_udp "$port"; fi
      ;;
    raw-*)
      "$DENO" run -A --quiet "$HERE/chat_raw_relay.ts" "$port" "${kind#raw-}" &
      RELAY_PID=$!
      wait_udp "$port"
      ;;
    ncat)
      ncat --chat -l 127.0.0.1 "$port" -m 1000 &
      RELAY_PID=$!
      wait_tcp "$port"
      ;;
  esac
  PIDS+=("$RELAY_PID")
}

stop_relay() {
  kill "$RELAY_PID" 2>/dev/null || true
  wait "$RELAY_PID" 2>/dev/null || true
}

# run_one KIND LOADER ARGS... -> prints the loader's line plus cpu_us_per_delivery=
run_one() {
  local kind=$1 loader=$2
  shift 2
  local port
  port=$(free_port)
  start_relay "$kind" "$port"
  local before after line received
  before=$(cpu_ticks "$RELAY_PID")
  line=$("$WORK/$loader" -p "$port" "$@")
  after=$(cpu_ticks "$RELAY_PID")
  stop_relay
  received=$(sed -E 's/.*received=([0-9]+).*/\1/' <<<"$line")
  local hz
  hz=$(getconf CLK_TCK)
  echo "$line cpu_us_per_delivery=$(python3 -c "print(round(($after-$before)*1e6/$hz/max($received,1),3))")"
}

median() { # median of the values of KEY in lines on stdin
  python3 -c '
import re, statistics, sys
key = sys.argv[1]
values = [float(m.group(1)) for line in sys.stdin for m in [re.search(r"\b" + key + r"=([0-9.]+)", line)] if m]
print(round(statistics.median(values), 3) if values else "n/a")' "$1"
}

summary() { # LABEL FILE
  local label=$1 file=$2 flawed note=""
  # A run whose joins went missing or whose window stalled is pointed out.
  flawed=$(grep -cE 'stalled=1|join_missing=[1-9]' "$file" || true)
  if [ "$flawed" -gt 0 ]; then note=" ($flawed flawed)"; fi
  printf '| %s | %s | %s | %s | %s | %s |\n' "$label" \
    "$(median deliveries_per_s <"$file")" "$(median loss_pct <"$file")" \
    "$(median p99_us <"$file")" "$(median cpu_us_per_delivery <"$file")" \
    "$(wc -l <"$file")$note"
}

echo "# chat fan-out benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| case | deliveries/s | loss % | p99 µs | relay CPU µs/delivery | runs |"
echo "|---|---|---|---|---|---|"

if [ "$MODE" = --sends ]; then
  kinds=(${KINDS:-raw-seq raw-all raw-last raw-ff switchboard-udp python})
  for kind in "${kinds[@]}"; do : >"$WORK/sends.$kind"; done
  for run in $(seq "$RUNS"); do
    for kind in "${kinds[@]}"; do
      run_one "$kind" udp_load -n 50 -m 20408 >>"$WORK/sends.$kind"
    done
  done
  for kind in "${kinds[@]}"; do summary "UDP 50 members, $kind" "$WORK/sends.$kind"; done
  exit 0
fi

declare -A PY_RATE
for members in 50 100; do
  messages=$((1000000 / (members - 1)))
  : >"$WORK/py.$members"
  : >"$WORK/sb.$members"
  for run in $(seq "$RUNS"); do
    if ((run % 2)); then order="python switchboard-udp"; else order="switchboard-udp python"; fi
    for kind in $order; do
      line=$(run_one "$kind" udp_load -n "$members" -m "$messages")
      if [ "$kind" = python ]; then echo "$line" >>"$WORK/py.$members"; else echo "$line" >>"$WORK/sb.$members"; fi
    done
  done
  summary "UDP $members members, python" "$WORK/py.$members"
  summary "UDP $members members, switchboard" "$WORK/sb.$members"
  PY_RATE[$members]=$(median messages_per_s <"$WORK/py.$members")
  echo "UDP $members: ratio switchboard/python deliveries/s = $(python3 -c "print(round($(median deliveries_per_s <"$WORK/sb.$members")/$(median deliveries_per_s <"$WORK/py.$members"),2))")" >>"$WORK/ratios"
done

# Open loop at fractions of the message rate Python sustained here (50
# members), and at the issue's reference figure for Python, 173k deliveries/s
# (173000 / 49 = 3531 messages/s).
members=50
for fraction in ref 0.5 0.75 1.0; do
  if [ "$fraction" = ref ]; then
    rate=3531
    fraction=$(python3 -c "print(round(3531 / ${PY_RATE[$members]}, 2))")
  else
    rate=$(python3 -c "print(int(${PY_RATE[$members]} * $fraction))")
  fi
  messages=$(python3 -c "print(max(2000, int($rate * 3)))")
  : >"$WORK/pyr" ; : >"$WORK/sbr"
  for run in $(seq 3); do
    echo "$(run_one python udp_load -n $members -m "$messages" -r "$rate")" >>"$WORK/pyr"
    echo "$(run_one switchboard-udp udp_load -n $members -m "$messages" -r "$rate")" >>"$WORK/sbr"
  done
  summary "UDP $members members open loop ${rate} msg/s (${fraction}× python), python" "$WORK/pyr"
  summary "UDP $members members open loop ${rate} msg/s (${fraction}× python), switchboard" "$WORK/sbr"
done

for members in 50 100; do
  messages=$((5000000 / (members - 1)))
  : >"$WORK/nc.$members"
  : >"$WORK/st.$members"
  for run in $(seq "$RUNS"); do
    if ((run % 2)); then order="ncat switchboard-tcp"; else order="switchboard-tcp ncat"; fi
    for kind in $order; do
      line=$(run_one "$kind" tcp_load -n "$members" -m "$messages")
      if [ "$kind" = ncat ]; then echo "$line" >>"$WORK/nc.$members"; else echo "$line" >>"$WORK/st.$members"; fi
    done
  done
  summary "TCP $members members, ncat --chat" "$WORK/nc.$members"
  summary "TCP $members members, switchboard" "$WORK/st.$members"
  echo "TCP $members: ratio switchboard/ncat deliveries/s = $(python3 -c "print(round($(median deliveries_per_s <"$WORK/st.$members")/$(median deliveries_per_s <"$WORK/nc.$members"),2))")" >>"$WORK/ratios"
done
echo
cat "$WORK/ratios"
if [ -n "${KEEP_RAW:-}" ]; then cat "$WORK"/py.* "$WORK"/sb.* "$WORK"/nc.* "$WORK"/st.* >"$KEEP_RAW"; fi
