#!/usr/bin/env bash
# make demo: generate the local profile's fake logs (10 users x 10 views x 7 impressions) and run
# the pipeline on them with embedded defaults, printing what each job wrote.
# Everything goes under ./out (wiped first): out/input/ holds the generated record file.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release/logproc
out=./out

rm -rf "$out"
mkdir -p "$out/input"
input="$out/input/tracking.event.log-request.rec"

echo "== generate logs --profile=local =="
gen_log=$("$bin" generate logs --profile=local --output "$input" 2>&1 | grep ' done ')
# the generator's counts, one per line
echo "$gen_log" | tr ' ' '\n' | grep -E '^(logRequests|users|views|autoViews|deliveryLogs|responseInsertions|impressions|navigates|addToCarts|checkouts|purchases)=' \
  | sed 's/=/: /; s/^/  /'
echo "  -> $input ($(stat -c %s "$input") bytes)"

echo
echo "== run raw-output =="
summary=$("$bin" run raw-output --source "$input" -o "$out" --logLevel=warn)
echo "$summary"

gen_imp=$(echo "$gen_log" | tr ' ' '\n' | sed -n 's/^impressions=//p')
raw_imp=$(echo "$summary" | awk '$4 ~ /\/raw\/impression$/ {print $1}')
if [ "$gen_imp" != "$raw_imp" ]; then
  echo "MISMATCH: generated $gen_imp impressions, raw/impression holds $raw_imp" >&2
  exit 1
fi
echo "  impressions: generated $gen_imp, archived $raw_imp in raw/impression"

echo
echo "== run flat-output (the local deployment's join arguments) =="
"$bin" run flat-output --source "$input" -o "$out" --logLevel=warn \
  --combineDeliveryLogWindow=PT5S --viewInsertionJoinMax=PT20S --insertionImpressionJoinMax=PT20S \
  --impressionActionJoinMax=PT20S --flatResponseInsertionGapDuration=PT1M \
  --nonBuyerUserSparseHash=6102540093495235004 --nonBuyerUserSparseHash=4078401918190321518

echo
echo "== run content-metrics (LogRequests + flat-output's joined events) =="
joined=$(find "$out/kafka/metrics.default.joined-event" -name 'part-*.rec' | sort)
joined_args=()
for f in $joined; do joined_args+=(--joinedEventSource "$f"); done
"$bin" run content-metrics --source "$input" "${joined_args[@]}" -o "$out" --logLevel=warn \
  --outputParquet --outputCsv --outputCumulatedFiles --outputCumulatedKafka

echo
echo "== run counter (flat-output's joined events -> Redis commands) =="
# --no-drain: stop at the last watermark, as a live job would stand, so the counts are still
# up (a drained run decays every sliding count to zero and deletes it at the end of time)
if [ -n "${REDIS_URL:-}" ]; then
  "$bin" run counter "${joined_args[@]/--joinedEventSource/--source}" -o "$out" --logLevel=warn \
    --counterOutputStartTimestamp=1 --no-drain --redisUrl="$REDIS_URL"
else
  "$bin" run counter "${joined_args[@]/--joinedEventSource/--source}" -o "$out" --logLevel=warn \
    --counterOutputStartTimestamp=1 --no-drain >/dev/null
  for f in "$out"/counter/redis-commands-*.resp; do
    echo "  $f ($(stat -c %s "$f") bytes; load it with: redis-cli --pipe < $f)"
    # count the RESP commands by name and the keys they write
    awk 'BEGIN{RS="\r\n"} /^\*/{i=0; next} /^\$/{next}
         {i++; if (i==1) {cmd=toupper($0); n[cmd]++} if (i==2 && cmd!="PING") keys[$0]=1}
         END{for (c in n) printf "    %-8s %d\n", c, n[c]; k=0; for (x in keys) k++;
             printf "    keys     %d\n", k}' "$f"
  done
  echo "  (set REDIS_URL=redis://127.0.0.1:6379/10 to write to a Redis server instead)"
fi

echo
first=$(find "$out/etl/joined_impression" -name 'part-*.avro' | sort | head -1)
echo "Look at a table: $bin inspect $first | head -1"
