#!/usr/bin/env bash
# scripts/bench.sh — what the mediator adds to every call, measured side by
# side with calling the upstream directly, in one run (`make bench-report`).
#
# On the trivial echo tool of tools/testdata/fakeupstream, over stdio and over
# streamable HTTP, at concurrency 1 and 32, it runs cmd/mediator-bench
# directly against the upstream and through the mediator with the full
# pipeline on (the configured identity, the example Casbin policy, the audit
# chain in SQLite), interleaving direct and mediated runs and repeating them
# (the machine may be shared and noisy: medians over rounds are reported).
# Then: memory with many open agent sessions, CPU and block profiles of the
# mediator under load, and a soak run whose heap and goroutines must stay
# flat. It writes the generated part of BENCHMARKS.md, and then runs
# scripts/instructions.sh for the instruction counts under callgrind.
#
# Beside direct and mediated, each scenario also runs a bare mcp-go relay
# (tools/testdata/mcpgorelay): the floor any mcp-go proxy pays for a second
# MCP hop, so that the report can split the mediator's overhead into that
# hop and its own pipeline.
#
# Usage: scripts/bench.sh [--quick] [--rounds N] [--duration D] [--sessions N]
#                         [--soak D] [--out FILE] [--keep]
#   --quick       one short round, small session count, 10s soak (~1 minute)
#   --rounds N    rounds of the direct/relay/mediated matrix (default 5)
#   --duration D  length of each run (default 4s)
#   --sessions N  open agent sessions for the memory run (default 1000)
#   --soak D      length of the soak run, 0 to skip (default 5m)
#   --out FILE    report file (default BENCHMARKS.md at the repository root)
#   --keep        keep the work directory (results, profiles, logs)
# The full run takes about 20 minutes on 2 cores (8 of them under callgrind).
set -euo pipefail

ROUNDS=5 DUR=4s SESSIONS=1000 SOAK=5m PROFILE=10s KEEP=0 QUICK=0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/BENCHMARKS.md
ARGS="$*"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ROUNDS=1 DUR=1s SESSIONS=100 SOAK=10s PROFILE=2s ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --sessions) SESSIONS=$2; shift ;;
    --soak) SOAK=$2; shift ;;
    --out) OUT=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mediator-bench.XXXXXX")
# The mediators here keep their audit checkpoints in the work directory.
export XDG_STATE_HOME=$WORK/state
BIN=$WORK/bin RES=$WORK/results
mkdir -p "$BIN" "$RES/runs"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$KEEP" = 1 ]; then echo "bench.sh: work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
START=$(date +%s)

log "building into $BIN"
cd "$ROOT"
go build -o "$BIN/mediator" ./cmd/mediator
go build -o "$BIN/mediator-bench" ./cmd/mediator-bench
go build -o "$BIN/fakeupstream" ./tools/testdata/fakeupstream
go build -o "$BIN/mcpgorelay" ./tools/testdata/mcpgorelay
MB=$BIN/mediator-bench

# The machine.
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "command: scripts/bench.sh $ARGS"
  echo "cpus (nproc): $(nproc)"
  echo "cpu model: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || uname -p)"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo 2>/dev/null || echo unknown)"
  echo "kernel: $(uname -sr)"
  echo "go: $(go version | cut -d' ' -f3-)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
  echo "run length: $DUR per run; soak $SOAK; $SESSIONS sessions in the memory run"
} > "$RES/machine.txt"
cat "$RES/machine.txt" >&2

# The upstream over streamable HTTP, shared by direct runs and the mediator.
"$BIN/fakeupstream" --mode http --addr-file "$WORK/upstream.addr" 2>"$WORK/upstream.log" &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$WORK/upstream.addr" ] && break; sleep 0.05; done
UPSTREAM=$(cat "$WORK/upstream.addr")

# The floor: a proxy made of mcp-go alone (tools/testdata/mcpgorelay), with
# none of the mediator's pipeline. Over HTTP it is one server, like the
# mediator; over stdio the load tool launches it, like the mediator.
DBG_RELAY=$($MB free-addr)
"$BIN/mcpgorelay" --mode http --addr-file "$WORK/relay.addr" --debug-listen "$DBG_RELAY" \
  --upstream-url "$UPSTREAM" 2>"$WORK/relay.log" &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$WORK/relay.addr" ] && break; sleep 0.05; done
[ -s "$WORK/relay.addr" ] || { cat "$WORK/relay.log" >&2; exit 1; }
RELAY=$(cat "$WORK/relay.addr")

# Configurations: the full pipeline at the default log level (info); only
# the debug endpoint is added. The example policy allows demo__echo to every
# agent, so the fake upstream is named "demo".
# supports LINE: whether this mediator knows the config key in LINE (the
# script also runs on builds from before a key existed).
supports() {
  printf 'agent: {id: probe}\nupstreams: []\n%s\n' "$1" > "$WORK/probe.yaml"
  ! "$BIN/mediator" upstream list --config "$WORK/probe.yaml" 2>&1 >/dev/null | grep -q "not found"
}
EXTRA=""
# Several mediators run at once here: none may claim the admin API's port.
if supports 'admin: {listen: ""}'; then EXTRA='admin: {listen: ""}'; fi
# Every run opens its sessions as the one bench agent, and the memory run
# a thousand: lift the per-agent cap on open sessions (64 by default).
if supports 'limits: {sessions_per_agent: 100000}'; then
  EXTRA="$EXTRA
limits: {sessions_per_agent: 100000}"
fi
config() { # config FILE DEBUG_ADDR UPSTREAM_LINE [EXTRA_DEBUG] [EXTRA_LINE]
  cat > "$1" <<EOF
agent: {id: bench-agent, roles: [writer, support]}
debug: {listen: $2${4:-}}
$EXTRA
${5:-}
upstreams:
  - name: demo
    $3
EOF
}
DBG_HTTP=$($MB free-addr) DBG_STDIO=$($MB free-addr) LISTEN=$($MB free-addr)
config "$WORK/http.yaml" "$DBG_HTTP" "url: $UPSTREAM"
config "$WORK/stdio.yaml" "$DBG_STDIO" "command: $BIN/fakeupstream"
# The same mediator with behavioural monitoring off, when this build has it:
# what the behaviour check and learning cost (target "nobehaviour").
NOBEH=0
if supports 'behaviour: {enabled: false}'; then
  NOBEH=1
  DBG_HTTP_NB=$($MB free-addr) DBG_STDIO_NB=$($MB free-addr) LISTEN_NB=$($MB free-addr)
  config "$WORK/http-nb.yaml" "$DBG_HTTP_NB" "url: $UPSTREAM" "" 'behaviour: {enabled: false}'
  config "$WORK/stdio-nb.yaml" "$DBG_STDIO_NB" "command: $BIN/fakeupstream" "" 'behaviour: {enabled: false}'
fi

# Scanning off (secrets: off — results and arguments not scanned — and
# pinning: off), target "noscan"; and metrics on (a metrics.listen), target
# "metrics", over HTTP only (mediator stdio serves no metrics): what the
# scanners cost, and what the Prometheus metrics cost.
VARIANTS=""
if supports 'metrics: {listen: ""}'; then
  VARIANTS="noscan metrics"
  DBG_HTTP_NS=$($MB free-addr) DBG_STDIO_NS=$($MB free-addr) LISTEN_NS=$($MB free-addr)
  NOSCAN_UP="
    secrets: \"off\"
    pinning: \"off\""
  config "$WORK/http-ns.yaml" "$DBG_HTTP_NS" "url: $UPSTREAM$NOSCAN_UP"
  config "$WORK/stdio-ns.yaml" "$DBG_STDIO_NS" "command: $BIN/fakeupstream$NOSCAN_UP"
  DBG_HTTP_MX=$($MB free-addr) LISTEN_MX=$($MB free-addr) METRICS_MX=$($MB free-addr)
  config "$WORK/http-mx.yaml" "$DBG_HTTP_MX" "url: $UPSTREAM" "" "metrics: {listen: \"$METRICS_MX\"}"
  # Metrics and tracing on: every call traced (target "telemetry",
  # sample_ratio 1, the most it can cost) or one in ten ("sampled",
  # sample_ratio 0.1), exported over OTLP/HTTP to a sink that counts the
  # spans of each export.
  if supports 'tracing: {endpoint: "http://127.0.0.1:1"}'; then
    VARIANTS="$VARIANTS telemetry sampled"
    SINK=$($MB free-addr) SINK_TS=$($MB free-addr)
    "$MB" otlp-sink "$SINK" "$RES/otlp-sink-telemetry.json" 2>"$WORK/otlp-sink.log" &
    SINK_PIDS=($!)
    "$MB" otlp-sink "$SINK_TS" "$RES/otlp-sink-sampled.json" 2>"$WORK/otlp-sink-sampled.log" &
    SINK_PIDS+=($!)
    PIDS+=("${SINK_PIDS[@]}")
    DBG_HTTP_TX=$($MB free-addr) LISTEN_TX=$($MB free-addr) METRICS_TX=$($MB free-addr)
    config "$WORK/http-tx.yaml" "$DBG_HTTP_TX" "url: $UPSTREAM" "" "metrics: {listen: \"$METRICS_TX\"}
tracing: {endpoint: \"http://$SINK\", sample_ratio: 1}"
    DBG_HTTP_TS=$($MB free-addr) LISTEN_TS=$($MB free-addr) METRICS_TS=$($MB free-addr)
    config "$WORK/http-ts.yaml" "$DBG_HTTP_TS" "url: $UPSTREAM" "" "metrics: {listen: \"$METRICS_TS\"}
tracing: {endpoint: \"http://$SINK_TS\", sample_ratio: 0.1}"
  fi
fi

# Agents authenticate over HTTP with a token the mediator minted, when this
# build has tokens; before that, every agent is the configured identity.
BEARER=()
if "$BIN/mediator" token mint --help >/dev/null 2>&1; then
  BEARER=(--bearer "$("$BIN/mediator" token mint --config "$WORK/http.yaml" --agent bench-agent \
    --role writer --role support --ttl 1h)")
  echo "agent authentication: bearer token (mediator token mint), verified on every request" >> "$RES/machine.txt"
else
  echo "agent authentication: the configured identity (this build has no agent tokens)" >> "$RES/machine.txt"
fi

start_serve() { # start_serve CONFIG LISTEN DB LOG
  "$BIN/mediator" serve --config "$1" --listen "$2" --db "$3" 2>"$4" &
  PIDS+=($!)
  $MB wait "http://$2/readyz" 60s || { cat "$4" >&2; exit 1; }
}
start_serve "$WORK/http.yaml" "$LISTEN" "$WORK/http.db" "$WORK/serve.log"
if [ "$NOBEH" = 1 ]; then
  start_serve "$WORK/http-nb.yaml" "$LISTEN_NB" "$WORK/http-nb.db" "$WORK/serve-nb.log"
fi
if [ -n "$VARIANTS" ]; then
  start_serve "$WORK/http-ns.yaml" "$LISTEN_NS" "$WORK/http-ns.db" "$WORK/serve-ns.log"
  start_serve "$WORK/http-mx.yaml" "$LISTEN_MX" "$WORK/http-mx.db" "$WORK/serve-mx.log"
  case " $VARIANTS " in *" telemetry "*)
    start_serve "$WORK/http-tx.yaml" "$LISTEN_TX" "$WORK/http-tx.db" "$WORK/serve-tx.log"
    start_serve "$WORK/http-ts.yaml" "$LISTEN_TS" "$WORK/http-ts.db" "$WORK/serve-ts.log" ;;
  esac
fi

ECHO='{"text":"ping"}'
# run NAME ARGS... — one load run, its report in $RES/NAME.json.
run() {
  local name=$1; shift
  local line="mediator-bench $*"
  if [ ${#BEARER[@]} -gt 0 ]; then line=${line//"${BEARER[1]}"/\$TOKEN}; fi
  echo "$line" | sed "s#$WORK#\$WORK#g; s#$BIN/##g" >> "$RES/commands.txt"
  "$MB" --json --progress 0 "$@" > "$RES/$name.json"
}
scenario() { # scenario ROUND TRANSPORT CONC TARGET
  local r=$1 t=$2 c=$3 target=$4 sess=$3
  local common=(--label "$t c=$c $target (round $r)" -c "$c" -d "$DUR" --warmup 20)
  if [ "$t" = stdio ]; then
    # One stdio session is one agent process; 32 calls in flight on it.
    sess=1
    if [ "$target" = direct ]; then
      run "runs/r$r-$t-c$c-$target" "${common[@]}" --sessions 1 --tool echo --args "$ECHO" -- "$BIN/fakeupstream"
    elif [ "$target" = relay ]; then
      run "runs/r$r-$t-c$c-$target" "${common[@]}" --sessions 1 --tool demo__echo --args "$ECHO" \
        -- "$BIN/mcpgorelay" -- "$BIN/fakeupstream"
    else
      # A stdio mediator the load tool launches: the default one, or the variant's.
      local sfx="" dbg=$DBG_STDIO
      case $target in
        nobehaviour) sfx=-nb dbg=$DBG_STDIO_NB ;;
        noscan) sfx=-ns dbg=$DBG_STDIO_NS ;;
      esac
      run "runs/r$r-$t-c$c-$target" "${common[@]}" --sessions 1 --tool demo__echo --args "$ECHO" \
        --debug-url "http://$dbg" -- "$BIN/mediator" stdio --config "$WORK/stdio$sfx.yaml" --db "$WORK/stdio$sfx-r$r-c$c.db"
    fi
  elif [ "$target" = direct ]; then
    run "runs/r$r-$t-c$c-$target" "${common[@]}" --sessions "$sess" --url "$UPSTREAM" --tool echo --args "$ECHO"
  elif [ "$target" = relay ]; then
    run "runs/r$r-$t-c$c-$target" "${common[@]}" --sessions "$sess" --url "$RELAY" --tool demo__echo --args "$ECHO" \
      --debug-url "http://$DBG_RELAY"
  else
    # A mediator over HTTP: the default one, or the variant's.
    local listen=$LISTEN dbg=$DBG_HTTP
    case $target in
      nobehaviour) listen=$LISTEN_NB dbg=$DBG_HTTP_NB ;;
      noscan) listen=$LISTEN_NS dbg=$DBG_HTTP_NS ;;
      metrics) listen=$LISTEN_MX dbg=$DBG_HTTP_MX ;;
      telemetry) listen=$LISTEN_TX dbg=$DBG_HTTP_TX ;;
      sampled) listen=$LISTEN_TS dbg=$DBG_HTTP_TS ;;
    esac
    run "runs/r$r-$t-c$c-$target" "${common[@]}" --sessions "$sess" --url "http://$listen/mcp" --tool demo__echo \
      --args "$ECHO" --debug-url "http://$dbg" ${BEARER[@]+"${BEARER[@]}"}
  fi
}

log "direct vs mcp-go relay vs mediated: $ROUNDS rounds of stdio/http × concurrency 1/32, $DUR each"
for r in $(seq "$ROUNDS"); do
  for t in stdio http; do
    for c in 1 32; do
      case $(((r + c) % 3)) in
        0) order="direct relay mediated" ;;
        1) order="mediated direct relay" ;;
        *) order="relay mediated direct" ;;
      esac
      if [ "$NOBEH" = 1 ]; then
        case $((r % 2)) in 0) order="$order nobehaviour" ;; *) order="nobehaviour $order" ;; esac
      fi
      for v in $VARIANTS; do
        case $v in metrics | telemetry | sampled) if [ "$t" = stdio ]; then continue; fi ;; esac
        case $(((r + c) % 2)) in 0) order="$order $v" ;; *) order="$v $order" ;; esac
      done
      for target in $order; do scenario "$r" "$t" "$c" "$target"; done
    done
  done
done

# The tracing mediators have exported what they queued (a batch leaves
# every 5 s, or at 512 spans); the sinks write what they received.
if [ -n "${SINK_PIDS+x}" ]; then
  sleep 6
  kill "${SINK_PIDS[@]}" && wait "${SINK_PIDS[@]}" || true
fi

log "memory: $SESSIONS open agent sessions, 32 of them busy"
run sessions --label "$SESSIONS open sessions" --url "http://$LISTEN/mcp" --tool demo__echo --args "$ECHO" \
  --sessions "$SESSIONS" -c 32 -d "$DUR" --debug-url "http://$DBG_HTTP" ${BEARER[@]+"${BEARER[@]}"}

# Profiles: a second mediator (and a stdio one) with the block and mutex
# profiles on, which cost time on every contended operation.
log "profiles: CPU and block profiles of the mediator under load"
PROF_DBG=$($MB free-addr) PROF_LISTEN=$($MB free-addr)
config "$WORK/http-prof.yaml" "$PROF_DBG" "url: $UPSTREAM" ", block_profile_rate: 10000, mutex_profile_fraction: 10"
start_serve "$WORK/http-prof.yaml" "$PROF_LISTEN" "$WORK/http-prof.db" "$WORK/serve-prof.log"
run profile-http-c32 --label "profile http c=32" --url "http://$PROF_LISTEN/mcp" --tool demo__echo --args "$ECHO" \
  -c 32 -d "$PROFILE" --debug-url "http://$PROF_DBG" --profile-dir "$WORK/prof-http" --cpu-profile "$PROFILE" \
  ${BEARER[@]+"${BEARER[@]}"}
config "$WORK/stdio-prof.yaml" "$DBG_STDIO" "command: $BIN/fakeupstream" ", block_profile_rate: 10000, mutex_profile_fraction: 10"
run profile-stdio-c1 --label "profile stdio c=1" --sessions 1 --tool demo__echo --args "$ECHO" -d "$PROFILE" \
  --debug-url "http://$DBG_STDIO" --profile-dir "$WORK/prof-stdio" --cpu-profile "$PROFILE" \
  -- "$BIN/mediator" stdio --config "$WORK/stdio-prof.yaml" --db "$WORK/stdio-prof.db"
for p in http-c32 stdio-c1; do
  dir=$WORK/prof-${p%-c*}
  go tool pprof -top -cum -nodecount 400 "$BIN/mediator" "$dir/cpu.pb.gz" > "$RES/profile-$p.txt" 2>/dev/null || true
done
# Where 32 HTTP agents' calls wait (a stdio mediator's block profile is its idle workers).
go tool pprof -top -cum -nodecount 25 -base "$WORK/prof-http/block-open.pb.gz" "$BIN/mediator" \
  "$WORK/prof-http/block-after.pb.gz" 2>/dev/null | sed -n '/flat%/,$p' > "$RES/block-http-c32.txt" || true

if [ "$SOAK" != 0 ]; then
  log "soak: $SOAK at concurrency 32 (heap and goroutine profiles before and after)"
  run soak --label "soak $SOAK" --url "http://$LISTEN/mcp" --tool demo__echo --args "$ECHO" -c 32 -d "$SOAK" \
    --debug-url "http://$DBG_HTTP" --profile-dir "$WORK/prof-soak" --cpu-profile 30s ${BEARER[@]+"${BEARER[@]}"}
fi

"$MB" summarize "$RES" "$OUT"
# The figure that does not move with the machine's load: instructions per
# call under callgrind (scripts/instructions.sh), into its own section of $OUT.
if [ -x "$ROOT/scripts/instructions.sh" ]; then
  log "instructions per call under callgrind (scripts/instructions.sh)"
  if [ "$QUICK" = 1 ]; then
    "$ROOT/scripts/instructions.sh" --out "$OUT" --rounds 1 --n1 50 --n2 250 >/dev/null
  else
    "$ROOT/scripts/instructions.sh" --out "$OUT" >/dev/null
  fi
fi
log "wrote $OUT in $(( $(date +%s) - START ))s"
