#!/usr/bin/env bash
# scripts/stdio-fleet.sh — 32 stdio agents on one machine (issue 20): what a
# desktop with many MCP clients, each launching `mediator stdio`, pays for
# sharing one database (`make bench-stdio-fleet`).
#
# Three ways, in interleaved rounds, each 32 `mediator stdio` processes
# started by the load tool (one agent each, one call in flight each, the
# echo tool of tools/testdata/fakeupstream):
#   shared    every process opens the same SQLite file (--attach never):
#             32 writers take turns at its one write lock
#   own       every process its own file (--attach never, --db run-{session}.db):
#             the figure to be within 1.5x of
#   attached  a `mediator serve` runs on the file and every process relays
#             its agent to it through the local socket (--attach always):
#             one process mediates and one writer writes
# In "shared" and "own" every stdio process starts its own upstream child;
# attached, the serve's one upstream child serves all 32.
#
# Usage: scripts/stdio-fleet.sh [--rounds N] [--duration D] [--out FILE] [--keep]
#   --rounds N    interleaved rounds (default 3); medians are reported
#   --duration D  length of each run (default 5s)
#   --out FILE    write the table into FILE's stdio-fleet section (between
#                 its stdio-fleet.sh markers; appended when absent)
#   --keep        keep the work directory
set -euo pipefail

ROUNDS=3 DUR=5s OUT="" KEEP=0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --out) OUT=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "stdio-fleet.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if ! [ "$ROUNDS" -ge 1 ] 2>/dev/null; then
  echo "stdio-fleet.sh: --rounds wants a number >= 1 (got $ROUNDS)" >&2
  exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mediator-fleet.XXXXXX")
export XDG_STATE_HOME=$WORK/state # the mediators' audit checkpoints
BIN=$WORK/bin
mkdir -p "$BIN" "$WORK/res"
SERVE=""
cleanup() {
  if [ -n "$SERVE" ]; then kill "$SERVE" 2>/dev/null || true; wait "$SERVE" 2>/dev/null || true; fi
  if [ "$KEEP" = 1 ]; then echo "stdio-fleet.sh: work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

log "building into $BIN"
cd "$ROOT"
go build -o "$BIN/mediator" ./cmd/mediator
go build -o "$BIN/mediator-bench" ./cmd/mediator-bench
go build -o "$BIN/fakeupstream" ./tools/testdata/fakeupstream
MB=$BIN/mediator-bench
CFG=$WORK/stdio.yaml
cat > "$CFG" <<YAML
agent: {id: bench-agent, roles: [writer, support]}
admin: {listen: ""}
limits: {sessions_per_agent: 100000}
upstreams:
  - name: demo
    command: $BIN/fakeupstream
YAML

# run NAME ROUND DB ARGS...: one load run of 32 stdio agents.
run() {
  local name=$1 r=$2; shift 2
  "$MB" --progress 0 --label "$name" --tool demo__echo --args '{"text":"ping"}' -c 32 --sessions 32 -d "$DUR" \
    --warmup 5 --timeout 20s --json -- "$BIN/mediator" stdio --config "$CFG" "$@" \
    >"$WORK/res/$name-r$r.json" 2>"$WORK/res/$name-r$r.log" || { tail -n 30 "$WORK/res/$name-r$r.log" >&2; return 1; }
}

for r in $(seq "$ROUNDS"); do
  log "round $r of $ROUNDS: shared, own, attached ($DUR each)"
  run shared "$r" --attach never --db "$WORK/shared-r$r.db"
  run own "$r" --attach never --db "$WORK/own-r$r-{session}.db"
  db=$WORK/attached-r$r.db
  "$BIN/mediator" serve --config "$CFG" --db "$db" --listen "$("$MB" free-addr)" 2>"$WORK/serve-r$r.log" &
  SERVE=$!
  for _ in $(seq 200); do [ -S "$db.sock" ] && break; sleep 0.05; done
  [ -S "$db.sock" ] || { echo "stdio-fleet.sh: the serve made no local socket" >&2; tail -n 20 "$WORK/serve-r$r.log" >&2; exit 1; }
  run attached "$r" --attach always --db "$db"
  kill "$SERVE"; wait "$SERVE" 2>/dev/null || true; SERVE=""
done

# The medians of the rounds, and p99 against "own".
TABLE=$(python3 - "$WORK/res" "$ROUNDS" "$DUR" <<'PY'
import json, statistics, sys, glob, os
res, rounds, dur = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = {}
for name in ("shared", "own", "attached"):
    runs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(res, name + "-r*.json")))]
    errs = sum(sum(r["errors"].values()) for r in runs)
    rows[name] = dict(
        tput=statistics.median(r["throughput_per_s"] for r in runs),
        p50=statistics.median(r["latency_ms"]["p50"] for r in runs),
        p99=statistics.median(r["latency_ms"]["p99"] for r in runs),
        p99s=[r["latency_ms"]["p99"] for r in runs], errs=errs)
own = rows["own"]["p99"]
print(f"32 `mediator stdio` agents, one call in flight each, echo tool; median of {rounds} interleaved rounds of {dur}.\n")
print("| | calls/s | p50 ms | p99 ms (rounds) | p99 / own | errors |")
print("|---|---:|---:|---:|---:|---:|")
label = {"shared": "shared: one database, 32 writers", "own": "own: one database each",
         "attached": "attached: one database, one serve writes"}
for name, r in rows.items():
    print(f"| {label[name]} | {r['tput']:,.0f} | {r['p50']:.2f} | {r['p99']:.1f} ({', '.join(f'{x:.1f}' for x in r['p99s'])}) | "
          f"{r['p99'] / own:.2f} | {r['errs']} |")
PY
)
printf '%s\n' "$TABLE"
if [ -n "$OUT" ]; then
  python3 - "$OUT" "$TABLE" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2]
begin, end = "<!-- stdio-fleet.sh:begin -->", "<!-- stdio-fleet.sh:end -->"
text = open(path).read()
block = begin + "\n" + table + "\n" + end
if begin in text and end in text:
    text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(text)
PY
  log "wrote the table into $OUT"
fi
