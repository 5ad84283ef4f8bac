#!/usr/bin/env bash
# make bench: the performance harness. Needs the release build (make build); the driver is
# standard-library Python run with Debian's interpreter. Options pass through to bench/run.py
# (bench/run.py --help). Results: bench/results/, summarised in docs/PERFORMANCE.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
/usr/bin/python3 "$here/run.py" "$@"
# --parallelism 1 against 2 on the same inputs, and the one-day backfill estimate
/usr/bin/python3 "$here/run_scaling.py"
# a >50M-row raw-output backfill on 2 threads (record file, then the archive's Avro tables)
/usr/bin/python3 "$here/run_day.py"
# counter (real redis-server on loopback) and content-metrics
/usr/bin/python3 "$here/run_metrics_jobs.py"
# content-metrics' daily aggregation against DuckDB (npm @duckdb/node-api, scripts/deps.sh bench)
# on the same rows, from run_metrics_jobs.py's cached input
/usr/bin/python3 "$here/run_duckdb.py"
# Kafka: kcat vs flat-output Kafka->Kafka on a private kafka-local cluster, and checkpoint cost
/usr/bin/python3 "$here/run_kafka.py"
# event -> Kafka output latency of flat-output live at 5K/20K/50K child records/s
/usr/bin/python3 "$here/run_latency.py"
