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

echo "== generate logs: local profile =="
"$bin" generate logs --profile=local --output "$input"

echo
echo "== raw-output =="
"$bin" run raw-output --source "$input" -o "$out" --logLevel=warn

echo
echo "Inspect any table with: $bin inspect PATH   (e.g. one of the part files above)"
first=$(find "$out/raw/impression" -name 'part-*.avro' | sort | head -1)
[ -n "$first" ] && echo "  $bin inspect $first | head -1"
exit 0
