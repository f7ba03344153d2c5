#!/bin/sh
# Remote-command benchmark: `true` commands/s and p50/p99 latency, 1 and 8
# concurrent clients, switchboard's cmd service side by side with socat,
# ncat --sh-exec, xinetd spawning /bin/sh, the Python reference server and a
# bare Deno.Command server (with and without a process group), all in the
# same run. Servers are visited in a rotating order each round; the summary
# reports medians over rounds and ratios to the best of socat/ncat/xinetd/Python.
#
#   bench/run_cmd.sh [ROUNDS] [SECONDS]        (defaults: 5 rounds of 3 s)
#
# Before/after an optimisation, in the same run: SB_REF=DIR adds
# "switchboard-ref", the daemon of another checkout (e.g. `git worktree add`
# of the old commit, with node_modules linked). ONLY="name name…" keeps just
# those servers.
#
# Writes bench/out/cmd_results.jsonl and prints a Markdown table.
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SECS=${2:-3}
# The Deno binary itself: node_modules/.bin/deno may be a Node launcher, and
# killing a launcher leaves its deno running.
DENO=${DENO:-$(node_modules/.bin/deno eval "console.log(Deno.execPath())")}
OUT=bench/out
mkdir -p "$OUT"
gcc -O2 -Wall -pthread -o "$OUT/cmd_load" bench/cmd_load.c

TMP=$(mktemp -d)
PIDS=""
cleanup() {
  for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# Free ports, chosen by the kernel.
set -- $("$DENO" eval 'const ls = [...Array(8)].map(() => Deno.listen({ port: 0 }));
console.log(ls.map((l) => (l.addr as Deno.NetAddr).port).join(" "));
ls.forEach((l) => l.close());')
P_SB=$1 P_SOCAT=$2 P_NCAT=$3 P_XINETD=$4 P_PY=$5 P_BARE=$6 P_BARES=$7 P_REF=$8
TOKEN=bench-token

cat >"$TMP/switchboard.toml" <<EOF
[daemon]
log_level = "info"

[[listener]]
name = "cmd"
service = "cmd"
listen = "127.0.0.1:$P_SB"
token = "$TOKEN"
max_concurrent = 64
EOF

cat >"$TMP/xinetd.conf" <<EOF
defaults
{
}
service sbbench
{
	type        = UNLISTED
	port        = $P_XINETD
	socket_type = stream
	protocol    = tcp
	wait        = no
	user        = $(id -un)
	server      = /bin/sh
	server_args = -c true
	bind        = 127.0.0.1
	instances   = UNLIMITED
	per_source  = UNLIMITED
	cps         = 1000000 1
	log_type    = FILE $TMP/xinetd.log
}
EOF

"$DENO" run -A main.ts serve -c "$TMP/switchboard.toml" 2>"$TMP/switchboard.log" &
PIDS="$PIDS $!"
socat "TCP-LISTEN:$P_SOCAT,fork,reuseaddr,bind=127.0.0.1" SYSTEM:true &
PIDS="$PIDS $!"
ncat -k -l 127.0.0.1 "$P_NCAT" --sh-exec true &
PIDS="$PIDS $!"
xinetd -dontfork -f "$TMP/xinetd.conf" -pidfile "$TMP/xinetd.pid" &
PIDS="$PIDS $!"
python3 /work/shared/reference/py_cmd_tcp.py "$P_PY" &
PIDS="$PIDS $!"
"$DENO" run -A bench/deno_cmd_bare.ts "$P_BARE" &
PIDS="$PIDS $!"
"$DENO" run -A bench/deno_cmd_bare.ts "$P_BARES" --setsid &
PIDS="$PIDS $!"
if [ -n "${SB_REF:-}" ]; then
  sed "s/127.0.0.1:$P_SB/127.0.0.1:$P_REF/" "$TMP/switchboard.toml" >"$TMP/ref.toml"
  "$DENO" run -A --config "$SB_REF/deno.json" "$SB_REF/main.ts" serve -c "$TMP/ref.toml" \
    2>"$TMP/ref.log" &
  PIDS="$PIDS $!"
fi
sleep 2

# name mode port
SERVERS="switchboard:framed:$P_SB switchboard-keepalive:keep:$P_SB socat:eof:$P_SOCAT ncat:eof:$P_NCAT xinetd:eof:$P_XINETD python:line:$P_PY deno-bare:eof:$P_BARE deno-bare-setsid:eof:$P_BARES"
[ -n "${SB_REF:-}" ] && SERVERS="$SERVERS switchboard-ref:framed:$P_REF"
if [ -n "${ONLY:-}" ]; then
  kept=""
  for spec in $SERVERS; do
    case " $ONLY " in *" ${spec%%:*} "*) kept="$kept $spec" ;; esac
  done
  SERVERS=$kept
fi
COUNT=$(echo $SERVERS | wc -w)

# Warm-up (the first spawns of a Deno process are slow).
for spec in $SERVERS; do
  IFS=: read -r name mode port <<EOF
$spec
EOF
  "$OUT/cmd_load" "$mode" "$port" 1 0.5 "$TOKEN" >/dev/null
done

RESULTS="$OUT/cmd_results.jsonl"
: >"$RESULTS"
for conc in 1 8; do
  round=1
  while [ "$round" -le "$ROUNDS" ]; do
    # Rotate the order each round so no server always follows the same one.
    i=0
    for spec in $SERVERS $SERVERS; do
      i=$((i + 1))
      [ "$i" -le $(((round - 1) % COUNT)) ] && continue
      [ "$i" -gt $(((round - 1) % COUNT + COUNT)) ] && break
      IFS=: read -r name mode port <<EOF
$spec
EOF
      line=$("$OUT/cmd_load" "$mode" "$port" "$conc" "$SECS" "$TOKEN")
      echo "{\"server\":\"$name\",\"clients\":$conc,\"round\":$round,${line#\{}" >>"$RESULTS"
      echo "  $name c=$conc round $round: $line" >&2
    done
    round=$((round + 1))
  done
done

"$DENO" run -A bench/cmd_summary.ts "$RESULTS"
