#!/usr/bin/env bash
# The local stack: Kafka (logproc kafka-local), an S3 server (s3rver), Redis, the four jobs
# running unbounded from Kafka into S3 and Redis, and the fake log and content generators, all on
# loopback, with every pid file, log, checkpoint and data directory in one folder.
#
#   scripts/local.sh up                 start everything (what `make local` runs), print a summary
#   scripts/local.sh down               stop everything this folder's pid files name, remove the folder
#   scripts/local.sh setup NAME         start one component (and what it needs) unless it runs
#   scripts/local.sh clean NAME         stop one component
#   scripts/local.sh status             components, pids, alive or not, addresses
#
# NAME: kafka s3 redis content-generator raw-output flat-output counter content-metrics
#       log-generator
#
# Environment:
#   LOCAL_DIR       the folder (default ./local)
#   LOGPROC_BIN     the logproc binary (default ./logproc, the release build's link)
#   LOCAL_<NAME>_PORT  a fixed port for KAFKA (default 9092), S3 (9000), REDIS (6379),
#                   CONTENT_API (5150), RAW_OUTPUT (8081), FLAT_OUTPUT (8082), COUNTER (8083),
#                   CONTENT_METRICS (8084). Without it the default is used, or the next free
#                   port above it when that one is taken; with it, a taken port is an error.
#   LOCAL_CHECKPOINT_INTERVAL  the jobs' --checkpointInterval (default PT10S; tables and topics
#                   are published at checkpoints, so this is how soon outputs show)
#   LOCAL_START_TIMEOUT / LOCAL_STOP_TIMEOUT  seconds to wait for a component to answer (60) or
#                   to exit after SIGTERM (30) before SIGKILL
#   LOCAL_GENERATOR_ARGS  replaces the fake log generator's arguments
#   LOCAL_CONTENT_JOIN=1  flat-output joins content through the local Content API
#
# Processes are found only through the pid files in the folder, and a pid is signalled only if
# the process still has its working directory inside the folder (a reused pid belongs to someone
# else). Nothing is looked up or killed by name: other stacks and tests may run on the machine.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${LOCAL_DIR:-./local}
bin=${LOGPROC_BIN:-$repo/logproc}
start_timeout=${LOCAL_START_TIMEOUT:-60}
stop_timeout=${LOCAL_STOP_TIMEOUT:-30}
checkpoint_interval=${LOCAL_CHECKPOINT_INTERVAL:-PT10S}
bucket=promoted-event-logs
label=blue
content_api_key=local-content-api-key

components=(kafka s3 redis content-generator raw-output flat-output counter content-metrics log-generator)
jobs=(raw-output flat-output counter content-metrics)

die() { echo "local: $*" >&2; exit 1; }
say() { echo "local: $*"; }

# The folder as an absolute path (processes get it as their working directory). Created on
# demand by the commands that start things, with a marker so `down` never removes a folder that
# this script did not make.
resolve_dir() {
  if [ "${1:-}" = create ]; then
    mkdir -p "$dir/logs"
    [ -e "$dir/.logproc-local" ] || : >"$dir/.logproc-local"
  fi
  if [ -d "$dir" ]; then dir=$(cd "$dir" && pwd); fi
}

# ---------------------------------------------------------------- processes

# A pid is ours when the process exists, is not a zombie (a container's pid 1 may never reap it)
# and runs with its working directory inside the folder.
owned() {
  local pid=$1 state cwd
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ "$state" != Z ] || return 1
  cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || return 1
  case "$cwd" in "$dir" | "$dir"/*) return 0 ;; esac
  return 1
}

pid_of() { [ -f "$dir/$1.pid" ] && cat "$dir/$1.pid" || true; }

running() { owned "$(pid_of "$1")"; }

# start NAME CMD...: runs CMD in its own session (a Ctrl-C of make does not reach it), in the
# folder, stdin from /dev/null, stdout and stderr to logs/NAME.log. The process writes its own pid
# file just before it execs CMD, so the pid is CMD's whether or not setsid had to fork.
start() {
  local name=$1
  shift
  rm -f "$dir/$name.pid"
  (cd "$dir" && exec setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' \
    "$dir/$name.pid" "$@" </dev/null >>"$dir/logs/$name.log" 2>&1 &)
  wait_for "$name" "its pid file" test -s "$dir/$name.pid"
}

# wait_for NAME WHAT CMD...: polls CMD every 0.1 s until it succeeds, for at most
# LOCAL_START_TIMEOUT seconds; fails early when NAME's process has exited.
wait_for() {
  local name=$1 what=$2
  shift 2
  local deadline=$((SECONDS + start_timeout))
  while ! "$@" >/dev/null 2>&1; do
    if [ -s "$dir/$name.pid" ] && ! running "$name"; then
      tail -n 20 "$dir/logs/$name.log" >&2 || true
      die "$name exited before $what (log: $dir/logs/$name.log)"
    fi
    [ "$SECONDS" -lt "$deadline" ] || {
      tail -n 20 "$dir/logs/$name.log" >&2 || true
      die "$name: no $what within ${start_timeout}s (log: $dir/logs/$name.log)"
    }
    sleep 0.1
  done
}

# stop NAME: SIGTERM, wait up to LOCAL_STOP_TIMEOUT s, then SIGKILL and wait again (bounded).
stop() {
  local name=$1 pid
  pid=$(pid_of "$name")
  if owned "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + stop_timeout))
    while owned "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    if owned "$pid"; then
      say "$name (pid $pid) still runs ${stop_timeout}s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 10))
      while owned "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
      owned "$pid" && die "$name (pid $pid) survives SIGKILL"
    fi
    say "$name stopped (pid $pid)"
  fi
  rm -f "$dir/$name.pid" "$dir/$name.addr" "$dir/$name.rc"
}

# ---------------------------------------------------------------- ports and addresses

port_taken() {
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# pick_port VAR DEFAULT: $LOCAL_<VAR>_PORT if set (it must be free), else DEFAULT or the next
# free port above it.
pick_port() {
  local var="LOCAL_$1_PORT" p
  if [ -n "${!var:-}" ]; then
    port_taken "${!var}" && die "${var}=${!var}: the port is in use"
    echo "${!var}"
    return
  fi
  for ((p = $2; p < $2 + 100; p++)); do
    port_taken "$p" || { echo "$p"; return; }
  done
  die "no free port in $2..$(($2 + 99))"
}

# NAME.addr holds a component's KEY=VALUE lines; env is all of them, rewritten on every change.
set_addr() {
  local name=$1
  shift
  printf '%s\n' "$@" >"$dir/$name.addr"
  write_env
}

write_env() {
  {
    echo "# the local stack's addresses: set -a; . $dir/env; set +a"
    echo "LOCAL_DIR=$dir"
    echo "CONTROL_DIR=$dir/control"
    for c in "${components[@]}"; do
      [ -f "$dir/$c.addr" ] && cat "$dir/$c.addr"
    done
  } >"$dir/env.tmp"
  mv "$dir/env.tmp" "$dir/env"
}

addr() { sed -n "s/^$2=//p" "$dir/$1.addr" 2>/dev/null | head -n 1; }

# ---------------------------------------------------------------- components

need_bin() {
  [ -x "$bin" ] || die "no logproc binary at $bin (run 'make build', or set LOGPROC_BIN)"
}

setup_kafka() {
  local port
  # the embedded cluster keeps its topics in memory: checkpoints of an earlier cluster name
  # offsets that the new, empty topics do not have
  if [ -n "$(ls -A "$dir/checkpoints" 2>/dev/null)" ]; then
    say "warning: $dir/checkpoints holds checkpoints of an earlier Kafka; for a fresh stack run 'make clean-local' first"
  fi
  port=$(pick_port KAFKA 9092)
  # the reference's local topics (other-jobs §G) for label blue; the two the jobs chain through
  # get 4 partitions, as in the demo
  start kafka "$bin" kafka-local --port "$port" \
    --topic tracking.event.log-request:4 \
    --topic "metrics.$label.default.joined-event:4" \
    --topic "metrics.$label.default.joined-user-event:1" \
    --topic "metrics.$label.default.flat-response-insertion:1" \
    --topic "metrics.$label.default.flat-user-response-insertion:1" \
    --topic "metrics.$label.default.cumulated-content-metrics:1"
  wait_for kafka "BOOTSTRAP line" grep -q '^BOOTSTRAP=' "$dir/logs/kafka.log"
  set_addr kafka "KAFKA=$(sed -n 's/^BOOTSTRAP=//p' "$dir/logs/kafka.log" | tail -n 1)"
}

setup_s3() {
  local port js=$repo/tools/testenv/s3server.js
  command -v node >/dev/null 2>&1 || die "s3: node is not installed (run scripts/deps.sh)"
  [ -d "$repo/tools/testenv/node_modules/@20minutes/s3rver" ] ||
    die "s3: s3rver is not installed in tools/testenv (run scripts/deps.sh)"
  port=$(pick_port S3 9000)
  mkdir -p "$dir/s3"
  start s3 node "$js" "$dir/s3" "$port" "$bucket"
  wait_for s3 "listening line" grep -q '^listening ' "$dir/logs/s3.log"
  set_addr s3 "S3_ENDPOINT=http://127.0.0.1:$port" "S3_BUCKET=$bucket" \
    "AWS_ACCESS_KEY_ID=S3RVER" "AWS_SECRET_ACCESS_KEY=S3RVER" "AWS_REGION=us-east-1"
  # the bucket answers a signed listing
  wait_for s3 "listing of s3://$bucket" env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER \
    "$bin" store ls "s3://$bucket" --s3Endpoint "http://127.0.0.1:$port"
}

setup_redis() {
  local port
  command -v redis-server >/dev/null 2>&1 || die "redis: redis-server is not installed (run scripts/deps.sh)"
  port=$(pick_port REDIS 6379)
  mkdir -p "$dir/redis"
  start redis redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --dir "$dir/redis"
  wait_for redis "PONG" sh -c "redis-cli -h 127.0.0.1 -p $port ping | grep -q PONG"
  # the counter uses DB 10, as the reference's local deployment
  set_addr redis "REDIS_URL=redis://127.0.0.1:$port/10" "REDIS_PORT=$port"
}

have_content_generator() { "$bin" generate content --help >/dev/null 2>&1; }

setup_content_generator() {
  if ! have_content_generator; then
    say "content-generator: skipped ('logproc generate content' is not in this build)"
    return 0
  fi
  local port url
  port=$(pick_port CONTENT_API 5150)
  # a local Content API preloaded with the fake catalogue, then the catalogue pushed to it once,
  # as the reference's content generator Job does
  start content-generator "$bin" generate content --serve --port "$port" --contentApiKey "$content_api_key"
  wait_for content-generator "listening line" grep -q 'listening on' "$dir/logs/content-generator.log"
  url="http://127.0.0.1:$port/"
  (cd "$dir" && "$bin" generate content --contentApiRootUrl="$url" --contentApiKey="$content_api_key") \
    >>"$dir/logs/content-generator.log" 2>&1 || die "content-generator: pushing the catalogue to $url failed (log: $dir/logs/content-generator.log)"
  set_addr content-generator "CONTENT_API=$url" "CONTENT_API_KEY=$content_api_key"
}

# job_args JOB: the reference's local arguments (other-jobs §G) without the Flink-side parts
# that the folder replaces: -o instead of --s3Bucket (same root), and our checkpoint interval.
job_args() {
  local common=("--jobLabel=$label" --sideOutputDebugLogging --startFromEarliest --parallelism=1
    --maxParallelism=1 --procAndEventWatermarkGenerator
    --watermarkIdlenessProcessingTimeTrailingDuration=PT1M)
  case "$1" in
  raw-output) args=("${common[@]}" --logParquet) ;;
  flat-output)
    args=("${common[@]}" --nonBuyerUserSparseHash=6102540093495235004
      --nonBuyerUserSparseHash=4078401918190321518 --flatResponseInsertionGapDuration=PT1M
      --combineDeliveryLogWindow=PT5S --viewInsertionJoinMax=PT20S
      --insertionImpressionJoinMax=PT20S --impressionActionJoinMax=PT20S)
    # the content join is off in the reference's local deployment; LOCAL_CONTENT_JOIN=1 turns it
    # on against the local Content API
    if [ "${LOCAL_CONTENT_JOIN:-0}" = 1 ] && [ -f "$dir/content-generator.addr" ]; then
      args+=("--contentApiRootUrl=$(addr content-generator CONTENT_API)"
        "--contentApiKey=$(addr content-generator CONTENT_API_KEY)"
        --contentIdFieldKeys=itemId --contentIdFieldKeys=storeId)
    fi ;;
  counter)
    # §G's --wipe: FLUSHDB at a fresh start only (a restart from a checkpoint keeps the counts)
    args=("${common[@]}" "--counterService=$(addr redis REDIS_URL)" --wipe
      --counterOutputStartTimestamp=1) ;;
  content-metrics)
    args=("${common[@]}" --no-disableAutoGeneratedUIDs --outputParquet --outputCumulatedFiles
      --outputCumulatedKafka "--cumulatedWindowStep=INTERVAL '1' MINUTE") ;;
  esac
}

setup_job() {
  local job=$1 var port
  var=$(echo "$job" | tr 'a-z-' 'A-Z_')
  case "$job" in
  raw-output) port=8081 ;; flat-output) port=8082 ;; counter) port=8083 ;; content-metrics) port=8084 ;;
  esac
  port=$(pick_port "$var" "$port")
  job_args "$job"
  mkdir -p "$dir/checkpoints" "$dir/savepoints" "$dir/control" "$dir/staging/$job"
  start "$job" env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 \
    "$bin" run "$job" "${args[@]}" \
    -b "$(addr kafka KAFKA)" \
    -o "s3://$bucket" --s3Endpoint "$(addr s3 S3_ENDPOINT)" \
    --checkpointInterval="$checkpoint_interval" \
    --checkpointDir "$dir/checkpoints/$label.$job" \
    --savepointDir "$dir/savepoints" \
    --controlDir "$dir/control" \
    --localStagingDir "$dir/staging/$job" \
    --restPort "$port"
  wait_for "$job" "answer on http://127.0.0.1:$port/healthz" \
    curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$port/healthz"
  set_addr "$job" "REST_$var=http://127.0.0.1:$port"
}

# the fake log generator: the reference's local arguments, pushed once into Kafka; it runs in
# the background like the others (so `clean` can stop it) and this waits for it to finish
setup_log_generator() {
  local gen_args rc
  if [ -n "${LOCAL_GENERATOR_ARGS:-}" ]; then
    read -r -a gen_args <<<"$LOCAL_GENERATOR_ARGS"
  else
    gen_args=(--users=10 --viewsPerSession=10 --responseInsertionsPerRequest=10
      --setupForInferredIds --miniSdkRate=0.2 --shadowTrafficRate=1.0)
  fi
  : >"$dir/logs/log-generator.log"
  # the wrapper forwards SIGTERM to the generator and waits for it, so the pid file's process
  # outlives the generator, and writes the generator's exit status
  start log-generator bash -c 'trap "kill -TERM \$c 2>/dev/null" TERM
    "$@" & c=$!
    while :; do wait $c; rc=$?; kill -0 $c 2>/dev/null || break; done
    echo $rc >log-generator.rc.tmp && mv log-generator.rc.tmp log-generator.rc' \
    generator "$bin" generate logs "${gen_args[@]}" -b "$(addr kafka KAFKA)"
  wait_for log-generator "exit status" test -s "$dir/log-generator.rc"
  rc=$(cat "$dir/log-generator.rc")
  [ "$rc" = 0 ] || die "log-generator failed (exit $rc; log: $dir/logs/log-generator.log)"
  set_addr log-generator "LOG_RECORDS=$(grep -o 'delivered=[0-9]*' "$dir/logs/log-generator.log" | tail -n 1 | cut -d= -f2)"
}

deps_of() {
  case "$1" in
  raw-output | content-metrics) echo kafka s3 ;;
  flat-output)
    echo kafka s3
    if [ "${LOCAL_CONTENT_JOIN:-0}" = 1 ]; then echo content-generator; fi ;;
  counter) echo kafka s3 redis ;;
  log-generator) echo kafka ;;
  *) ;;
  esac
}

setup() {
  local name=$1 d
  case " ${components[*]} " in *" $name "*) ;; *) die "unknown component '$name' (one of: ${components[*]})" ;; esac
  for d in $(deps_of "$name"); do setup "$d"; done
  if [ "$name" = log-generator ]; then
    setup_log_generator
    say "log-generator: $(addr log-generator LOG_RECORDS) LogRequests pushed to tracking.event.log-request"
    return
  fi
  if running "$name"; then
    return 0
  fi
  case "$name" in
  kafka) setup_kafka ;;
  s3) setup_s3 ;;
  redis) setup_redis ;;
  content-generator) setup_content_generator ;;
  *) setup_job "$name" ;;
  esac
  running "$name" && say "$name running (pid $(pid_of "$name"); $(tr '\n' ' ' <"$dir/$name.addr"))"
  return 0
}

status() {
  local c pid state
  printf '%-18s %-8s %-10s %s\n' COMPONENT PID STATE ADDRESS
  for c in "${components[@]}"; do
    pid=$(pid_of "$c")
    if [ -z "$pid" ]; then
      state="-"
    elif running "$c"; then
      state=alive
    elif [ -f "$dir/$c.rc" ]; then
      state="exited($(cat "$dir/$c.rc"))"
    else
      state=dead
    fi
    printf '%-18s %-8s %-10s %s\n' "$c" "${pid:--}" "$state" \
      "$( [ -f "$dir/$c.addr" ] && tr '\n' ' ' <"$dir/$c.addr" || true)"
  done
}

summary() {
  local kafka s3 redis_port
  kafka=$(addr kafka KAFKA)
  s3=$(addr s3 S3_ENDPOINT)
  redis_port=$(addr redis REDIS_PORT)
  cat <<EOF

== the local stack is up (folder $dir) ==
$(status)

Addresses: $dir/env      (load them with: set -a; . $dir/env; set +a)
Logs:      $dir/logs/<component>.log
Kafka:     $bin inspect kafka://tracking.event.log-request -b $kafka | head -1
           $bin inspect kafka://metrics.$label.default.joined-event -b $kafka --type event.JoinedEvent | head -1
           kcat -b $kafka -L
S3:        AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER $bin store ls s3://$bucket $label/raw/ --s3Endpoint $s3
Redis:     redis-cli -p $redis_port -n 10 --scan | head
Jobs:      $(for j in "${jobs[@]}"; do printf '%s ' "$(addr "$j" "REST_$(echo "$j" | tr 'a-z-' 'A-Z_')")"; done)
           (status page at /, Prometheus text at /metrics, Flink REST at /jobs)
           $bin list --controlDir $dir/control
           $bin savepoint flat-output --jobLabel $label --controlDir $dir/control
Status:    make local-status        Stop: make clean-local (stops everything, removes $dir)
EOF
}

up() {
  need_bin
  resolve_dir create
  local c
  for c in "${components[@]}"; do setup "$c"; done
  summary
}

down() {
  resolve_dir
  [ -d "$dir" ] || { say "nothing to stop ($dir does not exist)"; return 0; }
  [ -e "$dir/.logproc-local" ] || die "$dir was not made by scripts/local.sh: not touching it"
  local i
  for ((i = ${#components[@]} - 1; i >= 0; i--)); do stop "${components[i]}"; done
  rm -rf "$dir"
  say "stopped everything and removed $dir"
}

cmd=${1:-}
case "$cmd" in
up) up ;;
down) down ;;
setup)
  [ -n "${2:-}" ] || die "usage: $0 setup NAME"
  need_bin
  resolve_dir create
  setup "$2"
  ;;
clean)
  [ -n "${2:-}" ] || die "usage: $0 clean NAME"
  resolve_dir
  [ -d "$dir" ] || exit 0
  case " ${components[*]} " in *" $2 "*) ;; *) die "unknown component '$2' (one of: ${components[*]})" ;; esac
  stop "$2"
  write_env
  ;;
status)
  resolve_dir
  [ -d "$dir" ] || { say "no local stack in $dir"; exit 0; }
  status
  ;;
*) die "usage: $0 up|down|status|setup NAME|clean NAME" ;;
esac
