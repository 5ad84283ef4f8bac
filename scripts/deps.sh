#!/usr/bin/env bash
# Installs what logproc needs to build, test and demo, only where it is missing.
# Idempotent: a second run installs nothing and takes about a second.
#   scripts/deps.sh          build + test + demo needs (Debian packages, npm test tools)
#   scripts/deps.sh --build  only what `make` needs
#   scripts/deps.sh bench    the default set plus make bench's own tools: DuckDB (npm
#                            @duckdb/node-api, about 70 MB) in bench/duckdb. Never part of the
#                            test deps, so CI does not download it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

build_pkgs=(
  build-essential pkg-config cmake ninja-build
  protobuf-c-compiler libprotobuf-c-dev protobuf-compiler libprotobuf-dev
  libavro-dev libsnappy-dev libjansson-dev zlib1g-dev
  librdkafka-dev libcurl4-openssl-dev libssl-dev libhiredis-dev
  libpcre2-dev libutf8proc-dev libxxhash-dev libzstd-dev liblz4-dev
  libmicrohttpd-dev
)
test_pkgs=(
  libcmocka-dev python3 python3-avro python3-snappy python3-protobuf
  redis-server redis-tools kcat python3-boto3 python3-confluent-kafka
  nodejs npm chromium clang libclang-rt-14-dev
)

want=("${build_pkgs[@]}")
[ "${1:-}" = "--build" ] || want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# nodejs/npm may come from outside Debian (a preinstalled node): accept any working npm.
if command -v npm >/dev/null 2>&1; then
  keep=(); for p in "${missing[@]}"; do case "$p" in nodejs|npm) ;; *) keep+=("$p");; esac; done
  missing=("${keep[@]+"${keep[@]}"}")
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm test tools live in tools/testenv with a committed lock file.
npm_ci() { # DIR: npm ci when node_modules is missing or older than the lock file
  if [ ! -d "$1/node_modules" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.stamp" ]; then
    echo "deps: npm ci in ${1#"$here"/}"
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.stamp)
  fi
}
if [ "${1:-}" != "--build" ] && [ -f "$here/tools/testenv/package-lock.json" ]; then
  npm_ci "$here/tools/testenv"
fi

# make bench's DuckDB comparison (bench/run_duckdb.py), pinned by bench/duckdb/package-lock.json.
if [ "${1:-}" = "bench" ]; then
  npm_ci "$here/bench/duckdb"
fi
