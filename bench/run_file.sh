#!/usr/bin/env bash
# Benchmark of the file service (not a test). Side by side in one run, rounds
# alternating between servers, medians reported:
#   - 1 GiB download throughput: switchboard framed (sha256 off / on), raw,
#     the switchboard CLI (get ... -), the Python course-style reference
#     (../shared/reference/py_file_tcp.py), python3 -m http.server + curl,
#     and `cat file > /dev/null` as the page-cache ceiling;
#   - 4 KiB files downloaded per second by 8 clients (bench/file_load.c):
#     switchboard framed (a connection per file, and one per client), raw,
#     the Python reference, http.server;
#   - the daemon's CPU per GiB and its peak RSS across file sizes.
#
# usage: bench/run_file.sh [ROUNDS] [SECONDS_PER_SMALL_RUN]
# Output: a markdown report on stdout (progress on stderr). Needs gcc,
# python3 and curl. Everything it starts is stopped on exit.
set -euo pipefail

ROUNDS=${1:-5}
SMALL_SECONDS=${2:-4}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# The Deno binary itself: node_modules/.bin/deno may be a Node launcher, and
# killing a launcher leaves its deno running.
DENO=${DENO:-$("$REPO/node_modules/.bin/deno" eval "console.log(Deno.execPath())")}
PY_REF=${PY_REF:-$REPO/../shared/reference/py_file_tcp.py}
[ -f "$PY_REF" ] || PY_REF=/work/shared/reference/py_file_tcp.py
OUT=$REPO/bench/out
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sb_bench_file.XXXXXX")
ROOT=$WORK/root
mkdir -p "$ROOT"
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The end of the daemon's log is kept for inspection (it logs every request).
  [ -f "$WORK/switchboard.log" ] && tail -n 2000 "$WORK/switchboard.log" > "$OUT/switchboard_file.log"
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[bench] $*" >&2; }

gcc -O2 -pthread -o "$OUT/file_load" "$HERE/file_load.c"
LOAD=$OUT/file_load

log "creating test files in $ROOT"
head -c $((1024 * 1024 * 1024)) /dev/urandom > "$ROOT/big.bin"
head -c $((64 * 1024 * 1024)) /dev/urandom > "$ROOT/mid.bin"
head -c $((1024 * 1024)) /dev/urandom > "$ROOT/one.bin"
for i in $(seq 0 999); do head -c 4096 /dev/urandom > "$ROOT/$(printf 'f%04d.bin' "$i")"; done
cat "$ROOT"/*.bin > /dev/null # warm the page cache

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $1 never opened" >&2
  return 1
}

SB_PORT=$(free_port)
SB_RAW_PORT=$(free_port)
PY_PORT=$(free_port)
HTTP_PORT=$(free_port)
cat > "$WORK/switchboard.toml" <<EOF
[daemon]
log_level = "info"

[[listener]]
name = "file"
service = "file"
listen = "127.0.0.1:$SB_PORT"
root = "$ROOT"

[[listener]]
name = "file-raw"
service = "file"
listen = "127.0.0.1:$SB_RAW_PORT"
root = "$ROOT"
protocol = "raw"
EOF
"$DENO" run -A "$REPO/main.ts" serve -c "$WORK/switchboard.toml" 2> "$WORK/switchboard.log" &
SB_PID=$!
PIDS+=("$SB_PID")
python3 "$PY_REF" "$PY_PORT" "$ROOT" &
PY_PID=$!
PIDS+=("$PY_PID")
python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$ROOT" > /dev/null 2>&1 &
HTTP_PID=$!
PIDS+=("$HTTP_PID")
for port in "$SB_PORT" "$SB_RAW_PORT" "$PY_PORT" "$HTTP_PORT"; do wait_port "$port"; done

cpu_ms() { awk '{print ($14 + $15) * 10}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"} else if (NR%2) {print a[(NR+1)/2]} else {printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}}'; }

alive() {
  kill -0 "$SB_PID" 2>/dev/null && return 0
  log "the switchboard daemon died; its log is in $OUT/switchboard_file.log"
  tail -20 "$WORK/switchboard.log" >&2
  exit 1
}

# Runs a load command while measuring the CPU time (ms) a server process uses.
# Results go to files: the commands run in subshells.
mkdir -p "$WORK/res"
key() { echo "$1" | tr -c 'A-Za-z0-9' '_'; }
record() { echo "$3" >> "$WORK/res/$1_$(key "$2")"; }
values() { cat "$WORK/res/$1_$(key "$2")" 2>/dev/null || true; }

big_run() { # name server_pid command...
  local name=$1 pid=$2 before after value
  shift 2
  before=$([ "$pid" = - ] && echo 0 || cpu_ms "$pid")
  value=$("$@")
  after=$([ "$pid" = - ] && echo 0 || cpu_ms "$pid")
  record big "$name" "$value"
  [ "$pid" = - ] || record bigcpu "$name" "$((after - before))"
}
curl_big() { curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$HTTP_PORT/big.bin" | awk '{printf "%.3f", $1 / 1e9}'; }
elapsed_gbps() { # command...: GB/s of 1 GiB over the command's wall time
  local start end
  start=$(date +%s%N)
  "$@" > /dev/null
  end=$(date +%s%N)
  awk -v ns=$((end - start)) 'BEGIN {printf "%.3f", 1073741824 / ns}'
}

for round in $(seq 1 "$ROUNDS"); do
  log "1 GiB round $round/$ROUNDS"
  big_run "switchboard framed, sha256 off" "$SB_PID" bash -c "'$LOAD' framed $SB_PORT big.bin 1 0 1 nosha | sed -n 's/.*gb_per_s=\([0-9.]*\).*/\1/p'"
  big_run "Python reference (py_file_tcp.py)" "$PY_PID" bash -c "'$LOAD' raw $PY_PORT big.bin 1 0 1 | sed -n 's/.*gb_per_s=\([0-9.]*\).*/\1/p'"
  big_run "switchboard framed, sha256 on" "$SB_PID" bash -c "'$LOAD' framed $SB_PORT big.bin 1 0 1 | sed -n 's/.*gb_per_s=\([0-9.]*\).*/\1/p'"
  big_run "python3 -m http.server + curl" "$HTTP_PID" curl_big
  big_run "switchboard raw protocol" "$SB_PID" bash -c "'$LOAD' raw $SB_RAW_PORT big.bin 1 0 1 | sed -n 's/.*gb_per_s=\([0-9.]*\).*/\1/p'"
  big_run "switchboard get ... - (CLI client, hashing)" - elapsed_gbps "$DENO" run -A "$REPO/main.ts" get "127.0.0.1:$SB_PORT" big.bin -
  big_run "cat big.bin > /dev/null (ceiling)" - elapsed_gbps cat "$ROOT/big.bin"
  alive
done

small_run() { # name server_pid mode port pattern
  local result before after files errors
  before=$(cpu_ms "$2")
  result=$("$LOAD" "$3" "$4" "$5" 8 "$SMALL_SECONDS" 1000)
  after=$(cpu_ms "$2")
  files=$(echo "$result" | sed -n 's/.*files=\([0-9]*\).*/\1/p')
  record small "$1" "$(echo "$result" | sed -n 's/.*files_per_s=\([0-9]*\).*/\1/p')"
  [ "${files:-0}" -gt 0 ] && record smallcpu "$1" "$(((after - before) * 1000 / files))"
  errors=$(echo "$result" | sed -n 's/.*errors=\([0-9]*\).*/\1/p')
  [ "$errors" = 0 ] || log "$1: $errors errors"
  alive
}
for round in $(seq 1 "$ROUNDS"); do
  log "4 KiB files round $round/$ROUNDS"
  small_run "switchboard framed, a connection per file" "$SB_PID" framed "$SB_PORT" f%04d.bin
  small_run "Python reference (py_file_tcp.py)" "$PY_PID" raw "$PY_PORT" f%04d.bin
  small_run "switchboard framed, a connection per client" "$SB_PID" framed-keep "$SB_PORT" f%04d.bin
  small_run "python3 -m http.server (HTTP/1.0 GET)" "$HTTP_PID" http "$HTTP_PORT" f%04d.bin
  small_run "switchboard raw protocol" "$SB_PID" raw "$SB_RAW_PORT" f%04d.bin
done

log "RSS across sizes"
RSS_ROWS=""
for file in one.bin mid.bin big.bin; do
  for sha in nosha sha; do
    base=$(rss_kib "$SB_PID")
    peak=$base
    "$LOAD" framed "$SB_PORT" "$file" 1 0 1 "$sha" > /dev/null &
    load_pid=$!
    while kill -0 "$load_pid" 2>/dev/null; do
      now=$(rss_kib "$SB_PID")
      [ "$now" -gt "$peak" ] && peak=$now
      sleep 0.05
    done
    wait "$load_pid"
    RSS_ROWS+="| $file | $([ "$sha" = sha ] && echo on || echo off) | $((base / 1024)) | $((peak / 1024)) | $(((peak - base) / 1024)) |"$'\n'
  done
done

py_big=$(values big "Python reference (py_file_tcp.py)" | median)
py_small=$(values small "Python reference (py_file_tcp.py)" | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f×", a / b; else print "n/a"}'; }

echo "## File service benchmark — $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Rounds: $ROUNDS, alternating servers; medians. Command: \`bench/run_file.sh $ROUNDS $SMALL_SECONDS\`."
echo "Server CPU is the server process's utime+stime (/proc, all threads) during the run: on a"
echo "shared machine it is steadier than wall-clock rates."
echo
echo "### 1 GiB download (GB/s, one client)"
echo
echo "| server | median GB/s | vs Python | server CPU ms per GiB | runs (GB/s) |"
echo "|---|---|---|---|---|"
for name in "switchboard framed, sha256 off" "switchboard framed, sha256 on" "switchboard raw protocol" \
  "switchboard get ... - (CLI client, hashing)" "Python reference (py_file_tcp.py)" \
  "python3 -m http.server + curl" "cat big.bin > /dev/null (ceiling)"; do
  med=$(values big "$name" | median)
  cpu=$(values bigcpu "$name" | median)
  echo "| $name | $med | $(ratio "$med" "$py_big") | $cpu | $(values big "$name" | tr '\n' ' ')|"
done
echo
echo "### 4 KiB files, 8 clients (files/s, ${SMALL_SECONDS}s per run)"
echo
echo "| server | median files/s | vs Python | server CPU µs per file | runs (files/s) |"
echo "|---|---|---|---|---|"
for name in "switchboard framed, a connection per file" "switchboard framed, a connection per client" \
  "switchboard raw protocol" "Python reference (py_file_tcp.py)" "python3 -m http.server (HTTP/1.0 GET)"; do
  med=$(values small "$name" | median)
  cpu=$(values smallcpu "$name" | median)
  echo "| $name | $med | $(ratio "$med" "$py_small") | $cpu | $(values small "$name" | tr '\n' ' ')|"
done
echo
echo "### switchboard daemon RSS during one download (MiB)"
echo
echo "| file | sha256 | before | peak | growth |"
echo "|---|---|---|---|---|"
printf '%s' "$RSS_ROWS"
