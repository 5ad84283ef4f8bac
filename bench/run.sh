#!/usr/bin/env bash
# make bench: the performance harness. Needs the release build (make build); the driver is
# standard-library Python run with Debian's interpreter. Options pass through to bench/run.py
# (bench/run.py --help). Results: bench/results/, summarised in docs/PERFORMANCE.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
/usr/bin/python3 "$here/run.py" "$@"
# counter (real redis-server on loopback) and content-metrics
/usr/bin/python3 "$here/run_metrics_jobs.py"
# Kafka: kcat vs flat-output Kafka->Kafka on a private kafka-local cluster, and checkpoint cost
/usr/bin/python3 "$here/run_kafka.py"
