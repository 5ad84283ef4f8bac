#!/usr/bin/env bash
# make demo: generate the local profile's fake logs (10 users x 10 views x 7 impressions) into an
# embedded Kafka cluster and run the whole pipeline on them as production wires it (Kafka in,
# Kafka, tables and counters out, checkpoints on), with embedded defaults, printing what each
# job wrote. Everything goes under ./out (wiped first).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release/logproc
out=./out

rm -rf "$out"
mkdir -p "$out/input" "$out/logs"
input="$out/input/tracking.event.log-request.rec"

# The embedded Kafka-protocol cluster, hosted by logproc itself on a free loopback port; the jobs
# and the generator talk to it as to any Kafka cluster. Stopped when the demo ends.
"$bin" kafka-local --port 0 --topic tracking.event.log-request:4 \
  --topic metrics.default.joined-event:4 >"$out/logs/kafka.out" 2>"$out/logs/kafka.err" &
kafka_pid=$!
trap 'kill "$kafka_pid" 2>/dev/null; wait "$kafka_pid" 2>/dev/null || true' EXIT
for _ in $(seq 200); do
  grep -q '^BOOTSTRAP=' "$out/logs/kafka.out" 2>/dev/null && break
  kill -0 "$kafka_pid" 2>/dev/null || { cat "$out/logs/kafka.err" >&2; exit 1; }
  sleep 0.05
done
bs=$(sed -n 's/^BOOTSTRAP=//p' "$out/logs/kafka.out")
[ -n "$bs" ] || { echo "kafka-local did not start" >&2; exit 1; }
echo "== embedded Kafka cluster at $bs =="

echo
echo "== generate logs --profile=local -> Kafka topic tracking.event.log-request =="
gen_log=$("$bin" generate logs --profile=local --output "$input" --bootstrapServers "$bs" 2>&1 | grep ' done ')
# the generator's counts, one per line
echo "$gen_log" | tr ' ' '\n' | grep -E '^(logRequests|users|views|autoViews|deliveryLogs|responseInsertions|impressions|navigates|addToCarts|checkouts|purchases)=' \
  | sed 's/=/: /; s/^/  /'
echo "  (also kept as a record file: $input)"

# every job reads its topics to their current end (--endAtLatest) and then drains, as a backfill
# would; without it a job runs on, as in production. Checkpoints go to $out/checkpoints/.
common=(-b "$bs" --endAtLatest -o "$out" --logLevel=warn --controlDir "$out/control")

echo
echo "== run raw-output (Kafka -> Avro tables) =="
summary=$("$bin" run raw-output "${common[@]}")
echo "$summary"

gen_imp=$(echo "$gen_log" | tr ' ' '\n' | sed -n 's/^impressions=//p')
raw_imp=$(echo "$summary" | awk '$4 ~ /\/raw\/impression$/ {print $1}')
if [ "$gen_imp" != "$raw_imp" ]; then
  echo "MISMATCH: generated $gen_imp impressions, raw/impression holds $raw_imp" >&2
  exit 1
fi
echo "  impressions: generated $gen_imp, archived $raw_imp in raw/impression"

echo
echo "== run flat-output (Kafka -> tables + topic metrics.default.joined-event; local join arguments) =="
"$bin" run flat-output "${common[@]}" \
  --combineDeliveryLogWindow=PT5S --viewInsertionJoinMax=PT20S --insertionImpressionJoinMax=PT20S \
  --impressionActionJoinMax=PT20S --flatResponseInsertionGapDuration=PT1M \
  --nonBuyerUserSparseHash=6102540093495235004 --nonBuyerUserSparseHash=4078401918190321518

echo
echo "== run content-metrics (LogRequests + joined events from Kafka) =="
"$bin" run content-metrics "${common[@]}" \
  --outputParquet --outputCsv --outputCumulatedFiles --outputCumulatedKafka

echo
echo "== run counter (joined events from Kafka -> Redis commands) =="
# --no-drain: stop at the last watermark, as a live job would stand, so the counts are still
# up (a drained run decays every sliding count to zero and deletes it at the end of time)
if [ -n "${REDIS_URL:-}" ]; then
  "$bin" run counter "${common[@]}" --counterOutputStartTimestamp=1 --no-drain --redisUrl="$REDIS_URL"
else
  "$bin" run counter "${common[@]}" --counterOutputStartTimestamp=1 --no-drain >/dev/null
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
echo "== Kafka topics =="
for t in metrics.default.joined-event metrics.blue.default.cumulated-content-metrics; do
  n=$("$bin" inspect "kafka://$t" -b "$bs" --type event.JoinedEvent 2>/dev/null | wc -l || true)
  echo "  $t: $n records"
done

echo
first=$(find "$out/etl/joined_impression" -name 'part-*.avro' | sort | head -1)
echo "Look at a table: $bin inspect $first | head -1"
echo "Checkpoints: $(find "$out/checkpoints" -name 'chk-*' | wc -l) files under $out/checkpoints/"
