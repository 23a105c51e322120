#!/usr/bin/env bash
# scripts/instructions.sh — instructions per mediated call, counted by
# valgrind's callgrind: a figure that does not move with the machine's load
# (`make bench-instructions`; `make bench-report` runs it too).
#
# Time-based figures on a shared machine swing by 20% between runs; an
# instruction count barely moves, so it is the figure to compare two builds
# by. For the mediator (full pipeline: identity, the example policy, the
# behaviour engine, the scanners, the audit chain in SQLite) and the bare
# mcp-go relay (tools/testdata/mcpgorelay), over streamable HTTP and stdio,
# at concurrency 1 and 32, on the echo tool of tools/testdata/fakeupstream:
# each server runs under callgrind (the upstream runs natively, it is the
# same for both) and serves two load runs of N1 and N2 calls. The load
# tool's --on-start and --on-end hooks zero the server's counters after the
# sessions are open and warm and dump them after the last call, so that
# start-up, sessions and shutdown are not counted; the figure is the
# difference of the two runs' counts over N2 - N1. Over HTTP one server
# process serves every run; over stdio the load tool starts one per run.
#
# What the figure includes: every instruction the server process executes
# in user space (its goroutines, the Go runtime, the garbage collector, the
# SQLite library), and the time-driven work (the behaviour engine's sync,
# the audit checkpoints) of the longer run's extra time under valgrind,
# reported on its own as the idle rate. It leaves out the kernel (system
# calls, the pipes and sockets) and the upstream.
#
# Usage: scripts/instructions.sh [--n1 N] [--n2 N] [--rounds N] [--out FILE] [--keep]
#   --n1 N, --n2 N  calls of the two runs (default 100 and 600)
#   --rounds N      rounds of the pair (default 3): the median is reported,
#                   with the spread of the rounds (a run now and then holds
#                   a large one-off cost: a checkpoint, a GC cycle, a stall)
#   --out FILE      write the figures into FILE's instructions section
#                   (between its instructions.sh markers; appended when absent)
#                   instead of printing them only
#   --keep          keep the work directory (callgrind files, logs)
# Needs valgrind (installed with apt-get when missing); about 8 minutes on 2 cores.
set -euo pipefail

N1=100 N2=600 ROUNDS=3 OUT="" KEEP=0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
while [ $# -gt 0 ]; do
  case $1 in
    --n1) N1=$2; shift ;;
    --n2) N2=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "instructions.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if ! [ "$N1" -ge 1 ] 2>/dev/null || ! [ "$N2" -gt "$N1" ] 2>/dev/null || ! [ "$ROUNDS" -ge 1 ] 2>/dev/null; then
  echo "instructions.sh: want 1 <= --n1 < --n2 and --rounds >= 1 (got $N1, $N2 and $ROUNDS)" >&2
  exit 2
fi
if ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; then
  # The one thing this needs beyond Go: Debian's valgrind (as root or with sudo).
  echo "instructions.sh: valgrind is not installed; installing it with apt-get" >&2
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends valgrind >/dev/null; } ||
    ! command -v callgrind_control >/dev/null; then
    echo "instructions.sh: could not install valgrind: run sudo apt-get install valgrind, then again" >&2
    exit 3
  fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mediator-instructions.XXXXXX")
export XDG_STATE_HOME=$WORK/state # the mediators' audit checkpoints
BIN=$WORK/bin CG=$WORK/callgrind
mkdir -p "$BIN" "$CG"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$KEEP" = 1 ]; then echo "instructions.sh: work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

log "building into $BIN"
cd "$ROOT"
go build -o "$BIN/mediator" ./cmd/mediator
go build -o "$BIN/mediator-bench" ./cmd/mediator-bench
go build -o "$BIN/fakeupstream" ./tools/testdata/fakeupstream
go build -o "$BIN/mcpgorelay" ./tools/testdata/mcpgorelay
MB=$BIN/mediator-bench
# Callgrind loses track of Go's asynchronous preemption signals (an
# assertion in its signal handling): preempt at function calls only.
VG=(env GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --quiet)
ECHO='{"text":"ping"}'

# cgc ARGS...: callgrind_control, quiet unless it fails.
cgc() { callgrind_control "$@" >"$WORK/cgc.out" 2>&1 || { cat "$WORK/cgc.out" >&2; exit 1; }; }
# totals FILE: the instruction count of a callgrind dump.
totals() { awk '/^(totals|summary):/ {print $2; exit}' "$1"; }
# per_call IR1 IR2: instructions per call of the difference.
per_call() { echo $((($2 - $1) / (N2 - N1))); }

# The upstream over HTTP, natively, for the HTTP servers.
"$BIN/fakeupstream" --mode http --addr-file "$WORK/upstream.addr" 2>"$WORK/upstream.log" &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$WORK/upstream.addr" ] && break; sleep 0.05; done
UPSTREAM=$(cat "$WORK/upstream.addr")

config() { # config FILE UPSTREAM_LINE
  cat > "$1" <<YAML
agent: {id: bench-agent, roles: [writer, support]}
admin: {listen: ""}
limits: {sessions_per_agent: 100000}
upstreams:
  - name: demo
    $2
YAML
}
config "$WORK/http.yaml" "url: $UPSTREAM"
config "$WORK/stdio.yaml" "command: $BIN/fakeupstream"
TOKEN=$("$BIN/mediator" token mint --config "$WORK/http.yaml" --agent bench-agent --role writer --role support --ttl 1h)

# load C N ARGS...: one load run of N calls at concurrency C, the server's
# counters zeroed just before the first measured call and dumped just after
# the last, while it runs ($MEDIATOR_BENCH_PIDS: a stdio server's pid; PID:
# an HTTP server's).
load() {
  local c=$1 n=$2; shift 2
  "$MB" --progress 0 --tool demo__echo --args "$ECHO" -c "$c" -n "$n" --warmup 5 --timeout 20s \
    --on-start "callgrind_control -z \${MEDIATOR_BENCH_PIDS:-$PID}" --on-end "callgrind_control -d \${MEDIATOR_BENCH_PIDS:-$PID}" \
    "$@" >"$WORK/load.out" 2>&1 || { tail -n 40 "$WORK/load.out" >&2; return 1; }
}

# http_server NAME URL [BEARER...]: the HTTP server of $PID (under
# callgrind) at concurrency 1 and 32, ROUNDS rounds of an N1 and an N2 run.
# Prints "NAME http C PER_CALL..." lines, one figure per round; the idle
# rate goes to $WORK/idle-NAME.
http_server() {
  local name=$1 url=$2; shift 2
  local out=$CG/$name.out n=0
  for c in 1 32; do
    local figs=()
    load "$c" "$N1" --url "$url" "$@" || exit 1 # warm: pools, connections, the first GC cycles
    n=$((n + 1))
    for _ in $(seq "$ROUNDS"); do
      local irs=()
      for calls in "$N1" "$N2"; do
        load "$c" "$calls" --url "$url" "$@" || exit 1
        n=$((n + 1))
        irs+=("$(totals "$out.$n")")
      done
      figs+=("$(per_call "${irs[@]}")")
    done
    echo "$name http $c ${figs[*]}"
  done
  # The time-driven work: ten idle seconds.
  cgc -z "$PID"
  sleep 10
  cgc -d "$PID"
  n=$((n + 1))
  echo $(($(totals "$out.$n") / 10)) > "$WORK/idle-$name"
}

# stdio_run NAME C N CMD...: one load run over stdio, the server CMD started
# by the load tool under callgrind; prints the count of its measured calls.
# (The count at the process's end is lost: callgrind fails on the signal of
# a child's exit.)
stdio_run() {
  local name=$1 c=$2 n=$3; shift 3
  local out
  # Callgrind now and then fails on a signal while a Go process starts
  # (an assertion in its signal handling, the stderr above): start again.
  for attempt in 1 2 3 4 5; do
    out=$CG/$name-stdio-c$c-n$n-$RANDOM.out
    if PID="" load "$c" "$n" --sessions 1 -- "${VG[@]}" --callgrind-out-file="$out" "$@" && [ -s "$out.1" ]; then
      totals "$out.1"
      return 0
    fi
    echo "instructions.sh: $name over stdio: attempt $attempt failed (no callgrind dump in $out.1)" >&2
  done
  exit 1
}

RESULTS=$WORK/results
: > "$RESULTS"
log "HTTP: the mediator (serve) under callgrind, $ROUNDS rounds of $N1 and $N2 calls at concurrency 1 and 32"
LISTEN=$("$MB" free-addr)
"${VG[@]}" --callgrind-out-file="$CG/mediator.out" \
  "$BIN/mediator" serve --config "$WORK/http.yaml" --listen "$LISTEN" --db "$WORK/http.db" 2>"$WORK/serve.log" &
PID=$!
PIDS+=("$PID")
"$MB" wait "http://$LISTEN/readyz" 300s || { cat "$WORK/serve.log" >&2; exit 1; }
http_server mediator "http://$LISTEN/mcp" --bearer "$TOKEN" >> "$RESULTS"

log "HTTP: the bare mcp-go relay under callgrind"
"${VG[@]}" --callgrind-out-file="$CG/relay.out" \
  "$BIN/mcpgorelay" --mode http --addr-file "$WORK/relay.addr" --upstream-url "$UPSTREAM" 2>"$WORK/relay.log" &
PID=$!
PIDS+=("$PID")
for _ in $(seq 3000); do [ -s "$WORK/relay.addr" ] && break; sleep 0.1; done
[ -s "$WORK/relay.addr" ] || { cat "$WORK/relay.log" >&2; exit 1; }
http_server relay "$(cat "$WORK/relay.addr")" >> "$RESULTS"

log "stdio: the mediator and the relay under callgrind, one process per run"
for c in 1 32; do
  for name in mediator relay; do
    figs=()
    for r in $(seq "$ROUNDS"); do
      if [ "$name" = mediator ]; then
        cmd=("$BIN/mediator" stdio --config "$WORK/stdio.yaml")
        a=$(stdio_run mediator "$c" "$N1" "${cmd[@]}" --db "$WORK/stdio-c$c-r$r-a.db")
        b=$(stdio_run mediator "$c" "$N2" "${cmd[@]}" --db "$WORK/stdio-c$c-r$r-b.db")
      else
        a=$(stdio_run relay "$c" "$N1" "$BIN/mcpgorelay" -- "$BIN/fakeupstream")
        b=$(stdio_run relay "$c" "$N2" "$BIN/mcpgorelay" -- "$BIN/fakeupstream")
      fi
      figs+=("$(per_call "$a" "$b")")
    done
    echo "$name stdio $c ${figs[*]}" >> "$RESULTS"
  done
done

# fig NAME TRANSPORT C: the median of the rounds' figures; spread: the
# highest minus the lowest, over the median.
fig() { awk -v w="$1 $2 $3" '$1" "$2" "$3 == w {for (i = 4; i <= NF; i++) print $i}' "$RESULTS" | sort -n |
  awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
spread() { awk -v w="$1 $2 $3" -v med="$(fig "$@")" '$1" "$2" "$3 == w {lo = hi = $4; for (i = 5; i <= NF; i++) {if ($i < lo) lo = $i; if ($i > hi) hi = $i}; printf "%.1f%%", 100 * (hi - lo) / med}' "$RESULTS"; }
commas() { awk -v v="$1" 'BEGIN {s = v < 0 ? "-" : ""; v = v < 0 ? -v : v; r = ""; while (v >= 1000) {r = sprintf(",%03d", v % 1000) r; v = int(v / 1000)}; print s v r}'; }
REPORT=$WORK/report.md
{
  echo "<!-- instructions.sh:begin (generated by scripts/instructions.sh; edits inside are overwritten) -->"
  echo
  echo "**Instructions per call**, counted by callgrind (\`make bench-instructions\`, $(date -u +%Y-%m-%d), commit"
  echo "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' with uncommitted changes'), $(go version | cut -d' ' -f3), $(valgrind --version)): the echo tool, the"
  echo "difference of a $N1-call and a $N2-call run over $((N2 - N1)) calls, the median of $ROUNDS rounds (*spread*: the highest"
  echo "minus the lowest, over the median). User-space instructions of the server process alone, from the first measured call to the"
  echo "last (not the kernel, not the upstream, not start-up or session set-up). The mediator runs its full"
  echo "pipeline: a bearer token over HTTP, the example policy, behaviour, the scanners, the audit chain in SQLite."
  echo
  echo '```'
  printf '%-9s %4s %13s %7s %13s %7s %15s %7s\n' transport conc mediator spread relay spread "mediator−relay" ratio
  for t in http stdio; do
    for c in 1 32; do
      m=$(fig mediator "$t" "$c") r=$(fig relay "$t" "$c")
      printf '%-9s %4s %13s %7s %13s %7s %15s %6s×\n' "$t" "$c" "$(commas "$m")" "$(spread mediator "$t" "$c")" \
        "$(commas "$r")" "$(spread relay "$t" "$c")" "$(commas $((m - r)))" "$(awk -v m="$m" -v r="$r" 'BEGIN {printf "%.2f", m / r}')"
    done
  done
  echo '```'
  echo
  echo "Idle, per second (time-driven work: the behaviour sync, the audit checkpoints, timers): the mediator"
  echo "$(commas "$(cat "$WORK/idle-mediator")") instructions, the relay $(commas "$(cat "$WORK/idle-relay")"). Under callgrind a run is ~40× slower than"
  echo "natively, so the figures above hold ~40× the idle work a call's time natively holds: about"
  echo "$(commas $(($(cat "$WORK/idle-mediator") / 100))) instructions of the mediator's per call at 100 calls/s under callgrind."
  echo
  echo "<!-- instructions.sh:end -->"
} > "$REPORT"
cat "$REPORT"
if [ -n "$OUT" ]; then
  if grep -q '^<!-- instructions.sh:begin' "$OUT" 2>/dev/null; then
    awk -v rep="$REPORT" '
      /^<!-- instructions.sh:begin/ { while ((getline line < rep) > 0) print line; skip = 1; next }
      /^<!-- instructions.sh:end/ { skip = 0; next }
      !skip { print }' "$OUT" > "$OUT.tmp"
    mv "$OUT.tmp" "$OUT"
  else
    { echo; cat "$REPORT"; } >> "$OUT"
  fi
  log "wrote the instructions section of $OUT"
fi
