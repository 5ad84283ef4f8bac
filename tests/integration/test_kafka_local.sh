#!/usr/bin/env bash
# logproc kafka-local hosts a Kafka-protocol cluster on a fixed loopback port that an outside
# client (kcat) uses; `logproc generate logs --bootstrapServers` puts exactly the records it
# reports (and that its record file holds, same keys, timestamps and values) into the topic;
# `logproc inspect kafka://TOPIC` prints each of them once; SIGTERM stops the cluster with
# status 0.
set -euo pipefail
: "${LOGPROC_BIN:?}"
work=$(mktemp -d "${TMPDIR:-/tmp}/test_kafka_local.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# a free port: bind to port 0 and take what the kernel picked; retried if it is taken by the
# time the cluster binds it
start_cluster() {
    local port
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    : >"$work/kl.out"
    "$LOGPROC_BIN" kafka-local --port "$port" --brokers 3 --topic plain:3 \
        --topic tracking.event.log-request:4 >"$work/kl.out" 2>"$work/kl.err" &
    pid=$!
    local deadline=$((SECONDS + 20))
    while [ $SECONDS -lt $deadline ]; do
        if grep -q '^BOOTSTRAP=' "$work/kl.out"; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then wait "$pid" || true; pid=; return 1; fi
        sleep 0.05
    done
    fail "no BOOTSTRAP line within 20 s: $(cat "$work/kl.err")"
}
for attempt in 1 2 3 4 5; do
    if start_cluster; then break; fi
    [ "$attempt" = 5 ] && fail "kafka-local did not start: $(cat "$work/kl.err")"
done
bs=$(sed -n 's/^BOOTSTRAP=//p' "$work/kl.out")
case "$bs" in 127.0.0.1:[0-9]*) ;; *) fail "bootstrap '$bs' is not 127.0.0.1:PORT" ;; esac

# ---- an outside client through the fixed port ----
kcat -b "$bs" -L -t plain >"$work/meta" 2>&1 || fail "kcat -L: $(cat "$work/meta")"
grep -q 'topic "plain" with 3 partitions' "$work/meta" || fail "metadata: $(cat "$work/meta")"
seq 1 500 | kcat -b "$bs" -P -t plain -z lz4 2>"$work/kcat.err" || fail "kcat -P: $(cat "$work/kcat.err")"
n=$(kcat -b "$bs" -C -t plain -e -q -f '%o\n' | wc -l)
[ "$n" = 500 ] || fail "kcat read $n records of plain, not 500"
# values "1".."500" are not LogRequests: inspect prints every record (with an error) and exits 1
set +e
"$LOGPROC_BIN" inspect "kafka://plain" --bootstrapServers "$bs" >"$work/plain.json" 2>"$work/plain.err"
st=$?
set -e
[ "$st" = 1 ] || fail "inspect of non-LogRequest values exited $st: $(cat "$work/plain.err")"
[ "$(wc -l <"$work/plain.json")" = 500 ] || fail "inspect kafka://plain printed $(wc -l <"$work/plain.json") lines"
[ "$(grep -c '"partition":' "$work/plain.json")" = 500 ] || fail "inspect lines lack partition"

# ---- the generator to Kafka and to a record file in the same run ----
topic=tracking.event.log-request
"$LOGPROC_BIN" generate logs --profile=local --output "$work/local.rec" \
    --bootstrapServers "$bs" 2>"$work/gen.err" || fail "generate: $(cat "$work/gen.err")"
reported=$(sed -n "s/.*kafka bootstrap=.* topic=$topic records=\([0-9]*\) delivered=\([0-9]*\).*/\1 \2/p" "$work/gen.err")
[ -n "$reported" ] || fail "generate reported no Kafka count: $(cat "$work/gen.err")"
read -r sent delivered <<<"$reported"
[ "$sent" = "$delivered" ] || fail "generate sent $sent but $delivered were delivered"
[ "$sent" -gt 0 ] || fail "generate sent nothing"
total=$(sed -n 's/.*done logRequests=\([0-9]*\).*/\1/p' "$work/gen.err")
[ "$total" = "$sent" ] || fail "generate made $total LogRequests but sent $sent"
inkafka=$(kcat -b "$bs" -C -t "$topic" -e -q -f '%o\n' | wc -l)
[ "$inkafka" = "$sent" ] || fail "kcat counts $inkafka records in $topic, generate sent $sent"

"$LOGPROC_BIN" inspect "$work/local.rec" >"$work/file.json" || fail "inspect of the record file"
"$LOGPROC_BIN" inspect "kafka://$topic" -b "$bs" >"$work/kafka.json" 2>"$work/ik.err" ||
    fail "inspect kafka://$topic: $(cat "$work/ik.err")"
[ "$(wc -l <"$work/file.json")" = "$sent" ] || fail "the record file holds $(wc -l <"$work/file.json") records, Kafka $sent"
[ "$(wc -l <"$work/kafka.json")" = "$sent" ] || fail "inspect kafka:// printed $(wc -l <"$work/kafka.json") lines, not $sent"
# same records (timestamp, key, value) in both, whatever the order across partitions
jq -c '{timestamp, key, value}' "$work/file.json" | sort >"$work/file.set"
jq -c '{timestamp, key, value}' "$work/kafka.json" | sort >"$work/kafka.set"
cmp -s "$work/file.set" "$work/kafka.set" || fail "the Kafka records differ from the record file's"
# offsets ascend within each partition
jq -r '"\(.partition) \(.offset)"' "$work/kafka.json" |
    awk '{ if (($1 in last) && $2 <= last[$1]) { print "offset " $2 " after " last[$1] " in partition " $1; bad=1 } last[$1]=$2 } END { exit bad }' ||
    fail "offsets out of order"

# ---- SIGTERM: clean exit ----
kill -TERM "$pid"
set +e
wait "$pid"
st=$?
set -e
pid=
[ "$st" = 0 ] || fail "kafka-local exited $st after SIGTERM: $(cat "$work/kl.err")"
echo "ok: kcat 500, generator $sent records, inspect matched the record file"
