#!/usr/bin/env bash
# TCP echo benchmark: switchboard's echo listener against a single-threaded C
# epoll server (the baseline), a plain Deno read/write loop, the Python asyncio
# reference servers, xinetd's built-in echo and, for large messages, socat and
# ncat. Servers are measured in alternation, several
# rounds in one run (the machine is shared and noisy), and the summary reports
# medians, spread and ratios against the C server.
#
# usage: bench/run_echo.sh            (from anywhere; about 11 minutes)
# env:   ROUNDS=5 WARMUP=1 DURATION=5 SCENARIOS="small large memory"
#        SMALL_SERVERS="switchboard deno_bare c py_proto py_streams xinetd"
#        LARGE_SERVERS="switchboard deno_bare c py_proto py_streams xinetd socat ncat"
#        MEMORY_SERVERS="switchboard deno_bare py_proto py_streams c"
#        (deno_bare is bench/deno_echo_bare.ts: a fixed 2 KiB buffer, 64 KiB for large
#        messages; also available:
#        switchboard_ref, switchboard from the checkout SB_REF=DIR, e.g. the
#        commit before an optimisation: git archive REV | tar -x -C DIR)
#        SMALL="50 64" LARGE="8 16384" IDLE_CONNS=1000 PIN=0
# Raw figures go to bench/out/echo_<time>.txt, the summary to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-1}
DURATION=${DURATION:-5}
SCENARIOS=${SCENARIOS:-small large memory}
SMALL_SERVERS=${SMALL_SERVERS:-switchboard deno_bare c py_proto py_streams xinetd}
LARGE_SERVERS=${LARGE_SERVERS:-switchboard deno_bare c py_proto py_streams xinetd socat ncat}
MEMORY_SERVERS=${MEMORY_SERVERS:-switchboard deno_bare py_proto py_streams c}
read -r SMALL_CONNS SMALL_SIZE <<<"${SMALL:-50 64}"
read -r LARGE_CONNS LARGE_SIZE <<<"${LARGE:-8 16384}"
IDLE_CONNS=${IDLE_CONNS:-1000}
# PIN=1 runs servers on CPU 1 and the load generator on CPU 0 (taskset), so the
# scheduler cannot put both on one core; PIN=0 (default) lets it place them.
# On a shared machine pinning hurts: a pinned process cannot flee a busy core.
PIN=${PIN:-0}
SERVER_CPU="" CLIENT_CPU=""
if [[ $PIN == 1 ]]; then SERVER_CPU="taskset -c 1" CLIENT_CPU="taskset -c 0"; fi
# node_modules/.bin/deno is the Deno binary after `npm install` but a Node
# launcher after `deno install`; the launcher would put a node process between
# this script and the daemon (wrong PID for RSS and CPU, SIGTERM not passed on),
# so the servers run from the binary it resolves to.
DENO=$(node_modules/.bin/deno eval 'console.log(Deno.execPath())')
PY_ECHO=/work/shared/reference/py_echo_tcp.py
OUT=bench/out
mkdir -p "$OUT"
RAW="$OUT/echo_$(date +%Y%m%d_%H%M%S).txt"
TMP=$(mktemp -d)

gcc -O2 -Wall -Wextra -o "$OUT/echo_load" bench/echo_load.c
gcc -O2 -Wall -Wextra -o "$OUT/c_echo_server" bench/c_echo_server.c

declare -A PID PORT
cleanup() {
  for name in "${!PID[@]}"; do stop_server "$name"; done
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # PORT PID: until a connection is accepted (at most 30 s)
  for _ in $(seq 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "server (pid $2) died before listening" >&2; return 1; }
    sleep 0.1
  done
  echo "port $1 never answered" >&2
  return 1
}

start_server() { # NAME: starts it on a fresh port, waits until it answers
  local name=$1 port
  port=$(free_port)
  # The server's stderr goes to its log (Python prints a traceback for every
  # connection the load generator resets), shown if it dies.
  exec 3>&2 2>>"$TMP/$name.log"
  case $name in
    switchboard)
      printf '[daemon]\nlog_level = "warn"\n\n[[listener]]\nname = "echo"\nservice = "echo"\nlisten = "127.0.0.1:%s"\nmax_connections = %s\n' \
        "$port" $((IDLE_CONNS + 100)) >"$TMP/switchboard.toml"
      $SERVER_CPU "$DENO" run -A main.ts serve -c "$TMP/switchboard.toml" &
      ;;
    switchboard_ref) # the same daemon from another checkout, for before/after figures
      printf '[daemon]\nlog_level = "warn"\n\n[[listener]]\nname = "echo"\nservice = "echo"\nlisten = "127.0.0.1:%s"\nmax_connections = %s\n' \
        "$port" $((IDLE_CONNS + 100)) >"$TMP/switchboard_ref.toml"
      (cd "$SB_REF" && exec $SERVER_CPU "$DENO" run -A main.ts serve -c "$TMP/switchboard_ref.toml") &
      ;;
    deno_bare) $SERVER_CPU "$DENO" run -A bench/deno_echo_bare.ts "$port" "$BARE_BUFFER" & ;;
    c) $SERVER_CPU "$OUT/c_echo_server" "$port" & ;;
    py_proto) $SERVER_CPU python3 "$PY_ECHO" "$port" proto & ;;
    py_streams) $SERVER_CPU python3 "$PY_ECHO" "$port" streams & ;;
    socat) $SERVER_CPU socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" EXEC:cat & ;;
    ncat) $SERVER_CPU ncat -k -l 127.0.0.1 "$port" -e /bin/cat & ;;
    xinetd) # its built-in echo; it forks a child per connection
      printf 'defaults\n{\n\tinstances = UNLIMITED\n\tper_source = UNLIMITED\n\tcps = 100000 1\n}\nservice echo\n{\n\ttype = INTERNAL UNLISTED\n\tid = echo-stream\n\tsocket_type = stream\n\tprotocol = tcp\n\tport = %s\n\tbind = 127.0.0.1\n\twait = no\n\tuser = %s\n}\n' \
        "$port" "$(id -un)" >"$TMP/xinetd.conf"
      $SERVER_CPU xinetd -dontfork -stayalive -filelog "$TMP/xinetd.log" -f "$TMP/xinetd.conf" 2>/dev/null &
      ;;
    *) exec 2>&3 3>&-; echo "unknown server $name" >&2; return 1 ;;
  esac
  exec 2>&3 3>&-
  PID[$name]=$!
  PORT[$name]=$port
  wait_port "$port" "${PID[$name]}"
}

stop_server() { # NAME: SIGTERM, then SIGKILL after 15 s
  local name=$1 pid=${PID[$1]:-}
  [[ -n $pid ]] || return 0
  unset "PID[$name]"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$name (pid $pid) ignored SIGTERM for 15 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

rotate() { # ROUND WORDS...: the words rotated left by ROUND-1, so no server always goes first
  local r=$1; shift
  local words=("$@") n=$# i
  for ((i = 0; i < n; i++)); do printf '%s ' "${words[$(((i + r - 1) % n))]}"; done
}

# Runs a measurement of server NAME (the command sees its pid and port as $PID_ and
# $PORT_). If it fails because the server died (on this shared machine other
# people's clean-ups have killed it), says so, restarts it and tries once more.
measure() { # NAME COMMAND...
  local name=$1 attempt
  shift
  for attempt in 1 2; do
    PID_=${PID[$name]} PORT_=${PORT[$name]}
    if "$@"; then return 0; fi
    if kill -0 "${PID[$name]}" 2>/dev/null; then return 1; fi
    echo "$name (pid ${PID[$name]}) died during the measurement; end of its log:" >&2
    tail -n 5 "$TMP/$name.log" >&2
    echo "# $name died during a measurement and was restarted" >>"$RAW"
    wait "${PID[$name]}" 2>/dev/null || true
    unset "PID[$name]"
    if [[ $attempt == 1 ]]; then start_server "$name" && sleep 1; fi
  done
  return 1
}

run_load() { # SCENARIO ROUND NAME CONNS SIZE
  local line
  line=$($CLIENT_CPU "$OUT/echo_load" -c "$4" -s "$5" -w "$WARMUP" -d "$DURATION" -p "$PID_" "$PORT_") || return 1
  echo "scenario=$1 round=$2 server=$3 load1=$(cut -d' ' -f1 /proc/loadavg) $line" | tee -a "$RAW"
}

load() { # SCENARIO ROUND SERVER CONNS SIZE
  measure "$3" run_load "$@"
}

throughput() { # SCENARIO CONNS SIZE SERVERS...
  local scenario=$1 conns=$2 size=$3; shift 3
  local servers=("$@") name r
  for name in "${servers[@]}"; do start_server "$name"; done
  for ((r = 1; r <= ROUNDS; r++)); do
    for name in $(rotate "$r" "${servers[@]}"); do load "$scenario" "$r" "$name" "$conns" "$size"; done
  done
  for name in "${servers[@]}"; do stop_server "$name"; done
}

run_memory() { # ROUND NAME
  local line
  line=$($CLIENT_CPU "$OUT/echo_load" -m "$PID_" -c "$IDLE_CONNS" -s 64 -t 2 "$PORT_") || return 1
  echo "scenario=memory round=$1 server=$2 $line" | tee -a "$RAW"
}

memory() { # SERVERS...: a fresh server per measurement
  local name r
  for ((r = 1; r <= ROUNDS; r++)); do
    for name in $(rotate "$r" "$@"); do
      start_server "$name"
      sleep 1
      measure "$name" run_memory "$r" "$name"
      stop_server "$name"
    done
  done
}

{
  echo "# $(date -Is) $(uname -srm) nproc=$(nproc) deno=$("$DENO" --version | head -1)"
  echo "# PIN=$PIN ROUNDS=$ROUNDS WARMUP=$WARMUP DURATION=$DURATION SMALL=$SMALL_CONNS×$SMALL_SIZE LARGE=$LARGE_CONNS×$LARGE_SIZE IDLE_CONNS=$IDLE_CONNS"
  echo "# commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- lib handlers || echo ' + uncommitted changes')"
} | tee "$RAW"
for scenario in $SCENARIOS; do
  case $scenario in
    small) BARE_BUFFER=2048 throughput small "$SMALL_CONNS" "$SMALL_SIZE" $SMALL_SERVERS ;;
    large) BARE_BUFFER=65536 throughput large "$LARGE_CONNS" "$LARGE_SIZE" $LARGE_SERVERS ;;
    memory) BARE_BUFFER=2048 memory $MEMORY_SERVERS ;;
    *) echo "unknown scenario $scenario" >&2; exit 64 ;;
  esac
done
echo
python3 bench/summarize_echo.py "$RAW"
