#!/usr/bin/env bash
# make_fixture.sh: writes a savepoint fixture of flat-output (issue 5: "a savepoint written by the
# previous release's format restores").
#
#   tests/data/savepoints/make_fixture.sh LOGPROC_BIN OUT_DIR
#
# DO NOT REGENERATE CASUALLY. The fixture's whole purpose is to stay exactly as an older build
# wrote it, so that tests/integration/test_savepoint_fixture.py proves that newer builds still
# restore it. Regenerating it with the current build would turn that test into "the current build
# restores its own savepoints", which test_savepoint.py already covers, and would hide a broken
# upgrade path. Write a NEW fixture directory (v2/, ...) with this script, run by the release build
# that introduces a new checkpoint format (runtime/checkpoint.h CKPT_FORMAT_VERSION), and keep
# the old ones. Rewrite an existing one only when its old format is deliberately dropped, and say
# so in the commit. OUT_DIR must not exist yet (the script refuses to overwrite).
#
# What it does, with the given logproc binary:
#  1. starts two kafka-local clusters (free ports) with topic tracking.event.log-request:4 and
#     fills each with `logproc generate logs --profile local --bootstrapServers B`;
#  2. dumps both with kcat, partition by partition (offset, timestamp, key, value bytes), and
#     fails unless the two dumps are identical: the test regenerates the topic on a fresh cluster
#     and restores this savepoint's offsets into it, which is only sound if generation is
#     deterministic (same records, same keys, so the same partitions and offsets). This was
#     checked when v1 was written: 1586 records, partitions 0..3 ending at offsets
#     156/311/483/636, identical keys, values, headers and timestamps in both clusters (kcat, and
#     crashlib.kafka_records in Python); the script re-checks it every time it runs;
#  3. runs a live flat-output job (Kafka input without an end) on the first cluster with the
#     local deployment's join flags (scripts/demo.sh) and polls its metric log lines, with a
#     deadline, until every task's source has emitted as many records as its partition holds;
#  4. `logproc stop flat-output --jobLabel fx --savepoint --savepointPath OUT_DIR/savepoint`;
#  5. writes OUT_DIR/topic.txt (per partition: records and a digest of the values), copies the
#     published part-* files of out/fx/etl and out/fx/etl_side (not hidden in-progress files)
#     into OUT_DIR/published/, keeping the layout, and writes OUT_DIR/README.md.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 LOGPROC_BIN OUT_DIR   (see the comment at the top first)" >&2
  exit 2
fi
bin=$(realpath "$1")
fix=$2
repo=$(cd "$(dirname "$0")/../../.." && pwd)
topic=tracking.event.log-request
join=(--combineDeliveryLogWindow=PT5S --viewInsertionJoinMax=PT20S --insertionImpressionJoinMax=PT20S
      --impressionActionJoinMax=PT20S --flatResponseInsertionGapDuration=PT1M
      --nonBuyerUserSparseHash=6102540093495235004 --nonBuyerUserSparseHash=4078401918190321518)
live_flags=(--no-kafkaGroup --jobLabel fx --checkpointInterval PT0.5S --metricsLogInterval PT0.5S)

[ -x "$bin" ] || { echo "$0: $bin is not an executable" >&2; exit 2; }
command -v kcat >/dev/null || { echo "$0: kcat is needed (the determinism check)" >&2; exit 2; }
if [ -e "$fix" ]; then
  echo "$0: $fix exists; a fixture is never overwritten (read the comment at the top)" >&2
  exit 2
fi
mkdir -p "$fix"
fix=$(realpath "$fix")

work=$(mktemp -d "${TMPDIR:-/tmp}/savepoint-fixture.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# polls FILE for a line starting with PREFIX (at most 30 s) and prints the rest of it
wait_line() {
  local file=$1 prefix=$2 pid=$3 deadline=$((SECONDS + 30))
  while [ $SECONDS -lt $deadline ]; do
    if [ -f "$file" ] && grep -q "^$prefix" "$file"; then
      grep -m1 "^$prefix" "$file" | cut -c$((${#prefix} + 1))-
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$0: no $prefix line in $file" >&2
  return 1
}

# ---- 1, 2: two clusters, the same generation into each, identical dumps ----
bs=()
for i in 1 2; do
  "$bin" kafka-local --port 0 --topic "$topic:4" >"$work/kafka$i.out" 2>&1 &
  kpid=$!
  pids+=($kpid)
  bs+=("$(wait_line "$work/kafka$i.out" BOOTSTRAP= $kpid)")
  "$bin" generate logs --profile local --bootstrapServers "${bs[$((i - 1))]}" 2>"$work/gen$i.err"
  grep ' done ' "$work/gen$i.err" >&2
done
ends=()
for p in 0 1 2 3; do
  for i in 1 2; do
    b=${bs[$((i - 1))]}
    timeout 60 kcat -C -b "$b" -t "$topic" -p "$p" -o beginning -e -q -f '%o %T %k %S %h\n' \
      >"$work/meta$i.$p"
    timeout 60 kcat -C -b "$b" -t "$topic" -p "$p" -o beginning -e -q -f '%s' >"$work/values$i.$p"
  done
  if ! cmp -s "$work/meta1.$p" "$work/meta2.$p" || ! cmp -s "$work/values1.$p" "$work/values2.$p"; then
    echo "$0: generation is not deterministic: partition $p differs between two runs" >&2
    exit 1
  fi
  n=$(wc -l <"$work/meta1.$p")
  [ "$n" -gt 0 ] || { echo "$0: partition $p is empty" >&2; exit 1; }
  ends+=("$n")
  # what the test checks its regenerated topic against before restoring this savepoint into it
  echo "partition $p records $n values-sha256 $(sha256sum <"$work/values1.$p" | cut -d' ' -f1)" \
    >>"$work/topic.txt"
done
echo "generation is deterministic; partition ends: ${ends[*]}" >&2

# ---- 3: the live job, until each task's source has emitted its whole partition ----
out=$work/out
ctl=$work/ctl
# -o is RELATIVE on purpose: a local table sink's snapshot records its pending parts' paths as
# the job was given them (-o joined with the table), and a restore publishes (or finds already
# published) exactly those paths. With a relative root the restore works from any fresh working
# directory given the same `-o out`; an absolute one would tie the fixture to this temp dir.
(cd "$work" && exec "$bin" run flat-output -b "${bs[0]}" -o out --controlDir "$ctl" \
  "${live_flags[@]}" "${join[@]}" >"$work/live.out" 2>"$work/live.err") &
live=$!
pids+=($live)
deadline=$((SECONDS + 180))
while :; do
  kill -0 "$live" 2>/dev/null || { echo "$0: the live job ended:" >&2; tail -20 "$work/live.err" >&2; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "$0: the live job did not consume its input in time" >&2; exit 1; }
  done_parts=0
  for p in 0 1 2 3; do
    # the latest count of records out of task p's Kafka source (= its next offset)
    got=$(grep " numRecordsOut operator=source-kafka-$topic task=$topic-$p " "$work/live.err" \
      | tail -1 | sed -n 's/.* value=\([0-9]*\)$/\1/p' || true)
    [ "${got:-0}" = "${ends[$p]}" ] && done_parts=$((done_parts + 1))
  done
  [ $done_parts -eq 4 ] && break
  sleep 0.2
done
echo "the live job consumed every partition" >&2

# ---- 4: stop with a savepoint ----
"$bin" stop flat-output --jobLabel fx --savepoint --savepointPath "$fix/savepoint" --controlDir "$ctl" \
  --timeout PT2M
rc=0
wait "$live" || rc=$?
[ $rc -eq 0 ] || { echo "$0: the stopped job exited $rc" >&2; tail -20 "$work/live.err" >&2; exit 1; }
[ -f "$fix/savepoint/_metadata" ] || { echo "$0: no _metadata in the savepoint" >&2; exit 1; }
cp "$work/topic.txt" "$fix/topic.txt"

# ---- 5: the published tables, and the README ----
mkdir -p "$fix/published"
(cd "$out/fx" && find etl etl_side -type f -name 'part-*' ! -path '*/.*' -print0 \
  | xargs -0 cp --parents -t "$fix/published")
commit=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$repo" status --porcelain -- src proto CMakeLists.txt 2>/dev/null | wc -l)
version=$(sed -n 's/^#define CKPT_FORMAT_VERSION \([0-9]*\).*/\1/p' "$repo/src/runtime/checkpoint.h")
cat >"$fix/README.md" <<EOF
# flat-output savepoint fixture (checkpoint format version $version)

Written by \`tests/data/savepoints/make_fixture.sh\` on $(date -u +%Y-%m-%d) with a logproc built
from commit \`$commit\`$([ "$dirty" -gt 0 ] && echo " (with $dirty uncommitted change(s) under src/, proto/ or CMakeLists.txt)"),
whose \`src/runtime/checkpoint.h\` declares \`CKPT_FORMAT_VERSION $version\`.
Do not regenerate it: it stands for "a savepoint written by an older release" (see the script's
top comment); a new format gets a new directory next to this one.

- \`savepoint/\`: \`_metadata\` and one \`<task>.ckpt\` per task, as \`logproc stop --savepoint\`
  wrote them.
- \`published/\`: the part files the job had published (its \`out/fx/etl\` and
  \`out/fx/etl_side\` tables) when it stopped; a restore continues from them.

Input: topic \`$topic\` with 4 partitions on \`logproc kafka-local\`, filled by
\`logproc generate logs --profile local --bootstrapServers B\` (deterministic: partition ends
${ends[*]}, checked by generating into two clusters and comparing kcat dumps).

Job (live, Kafka input without an end; stopped once every partition was consumed):

    cd WORK && logproc run flat-output -b B -o out --controlDir CTL ${live_flags[*]} \\
      ${join[*]}
    logproc stop flat-output --jobLabel fx --savepoint --savepointPath FIX/savepoint --controlDir CTL

Restore (tests/integration/test_savepoint_fixture.py):

    cd FRESH_WORK && cp -r published out/fx && \\
    logproc run flat-output -b B --fromSavepoint COPY/savepoint --endAtLatest --no-kafkaGroup \\
      --jobLabel fx -o out --checkpointDir FRESH ${join[*]}

The output root must be given as the same relative \`out\`: the table sinks' state records the
paths of the parts they publish as the job was given them (see the script), so a restore looks
for the parts published before the savepoint at \`out/fx/...\`.
EOF
for d in "$fix/savepoint" "$fix/published" "$fix"; do du -sh "$d" >&2; done
