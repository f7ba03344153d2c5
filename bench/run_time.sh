#!/usr/bin/env bash
# UDP time benchmark: switchboard's time listener against the Python reference
# (/work/shared/reference/py_time_udp.py: recvfrom, time.strftime, sendto), and
# switchboard's UDP echo listener as the floor of Deno's datagram path. A C
# closed-loop load generator (bench/time_udp_load.c) keeps CLIENTS requests in
# flight. Servers run side by side and are measured in alternation, ROUNDS
# times (the machine is shared and noisy); the summary gives medians, the
# ratio to Python, and the server's CPU µs per request (/proc/PID/stat).
#
# usage: bench/run_time.sh          (from anywhere; about ROUNDS × servers × (DURATION+WARMUP) s)
# env:   ROUNDS=7 DURATION=5 WARMUP=1 CLIENTS=16 FORMAT='%Y-%m-%d %H:%M:%S'
#        (FORMAT='a||b||c': client i sends format i mod 3, a mixed stream)
#        SERVERS="switchboard python switchboard_echo"
# Raw figures go to bench/out/time_<time>.txt, the summary to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CLIENTS=${CLIENTS:-16}
FORMAT=${FORMAT:-%Y-%m-%d %H:%M:%S}
SERVERS=${SERVERS:-switchboard python switchboard_echo}
# The Deno binary itself: node_modules/.bin/deno may be a Node launcher, and
# killing a launcher leaves its deno running.
DENO=${DENO:-$(node_modules/.bin/deno eval "console.log(Deno.execPath())")}
PY_TIME=/work/shared/reference/py_time_udp.py
OUT=bench/out
mkdir -p "$OUT"
RAW="$OUT/time_$(date +%Y%m%d_%H%M%S).txt"
TMP=$(mktemp -d)

gcc -O2 -Wall -Wextra -o "$OUT/time_udp_load" bench/time_udp_load.c

declare -A PID PORT
cleanup() {
  for name in "${!PID[@]}"; do
    kill "${PID[$name]}" 2>/dev/null || true
    wait "${PID[$name]}" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

free_udp_port() {
  python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_udp() { # PORT PID: until a datagram is answered (at most 30 s)
  for _ in $(seq 300); do
    if python3 - "$1" <<'EOF' 2>/dev/null; then return 0; fi
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.1)
s.sendto(b"%Y", ("127.0.0.1", int(sys.argv[1])))
s.recvfrom(2048)
EOF
    kill -0 "$2" 2>/dev/null || { echo "server (pid $2) died before answering" >&2; return 1; }
  done
  echo "port $1 never answered" >&2
  return 1
}

start_server() { # NAME
  local name=$1 port
  port=$(free_udp_port)
  case $name in
    switchboard)
      printf '[daemon]\nlog_level = "warn"\n\n[[listener]]\nname = "time"\nservice = "time"\nlisten = "127.0.0.1:%s"\n' \
        "$port" >"$TMP/time.toml"
      "$DENO" run -A main.ts serve -c "$TMP/time.toml" &
      ;;
    switchboard_echo)
      printf '[daemon]\nlog_level = "warn"\n\n[[listener]]\nname = "echo"\nservice = "echo"\ntransport = "udp"\nlisten = "127.0.0.1:%s"\n' \
        "$port" >"$TMP/echo.toml"
      "$DENO" run -A main.ts serve -c "$TMP/echo.toml" &
      ;;
    python) python3 "$PY_TIME" "$port" & ;;
    *) echo "unknown server $name" >&2; return 1 ;;
  esac
  PID[$name]=$!
  PORT[$name]=$port
  wait_udp "$port" "${PID[$name]}"
}

for name in $SERVERS; do start_server "$name"; done

{
  echo "# UDP time benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores ($(uname -r))"
  echo "# rounds=$ROUNDS duration=${DURATION}s warmup=${WARMUP}s clients=$CLIENTS format='$FORMAT'"
  echo "# deno $("$DENO" --version | head -1 | cut -d' ' -f2), $(python3 --version)"
} | tee "$RAW"

for round in $(seq "$ROUNDS"); do
  for name in $SERVERS; do
    line=$("$OUT/time_udp_load" "${PORT[$name]}" "$CLIENTS" "$DURATION" "$WARMUP" "$FORMAT" "${PID[$name]}") || {
      echo "load against $name failed: $line" >&2
      exit 1
    }
    echo "round=$round server=$name $line" | tee -a "$RAW"
  done
done

echo
echo "Summary (medians over $ROUNDS rounds; raw figures in $RAW):"
python3 - "$RAW" <<'EOF'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    if not line.startswith("round="):
        continue
    f = dict(kv.split("=", 1) for kv in line.split())
    rows.setdefault(f["server"], []).append(f)
def med(name, key):
    return statistics.median(float(r[key]) for r in rows[name])
def spread(name, key):
    values = sorted(float(r[key]) for r in rows[name])
    return f"{values[0]:.0f}-{values[-1]:.0f}"
py = med("python", "rate") if "python" in rows else None
print(f"{'server':18} {'req/s':>9} {'min-max':>15} {'× python':>9} {'CPU µs/req':>11} {'timeouts':>9}")
for name in rows:
    rate = med(name, "rate")
    ratio = f"{rate / py:.2f}" if py else "-"
    print(f"{name:18} {rate:9.0f} {spread(name, 'rate'):>15} {ratio:>9} {med(name, 'cpu_us_per_req'):11.1f} {sum(int(r['timeouts']) for r in rows[name]):9d}")
if py:
    # Rounds pair servers measured seconds apart: the median of per-round ratios
    # is less sensitive to the machine's load drifting during the run.
    for name in rows:
        if name == "python":
            continue
        ratios = sorted(float(a["rate"]) / float(b["rate"]) for a, b in zip(rows[name], rows["python"]))
        print(f"{name} / python per round: median {statistics.median(ratios):.2f} (min {ratios[0]:.2f}, max {ratios[-1]:.2f})")
EOF
