#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang into build/fuzz and runs each one,
# time-boxed, over a copy of its seed corpus. Prints a summary (target, executions, crashes) and
# exits non-zero when any target crashed or a regression input failed.
#
#   scripts/fuzz.sh                              every target, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh             longer
#   FUZZ_RUNS=2000 scripts/fuzz.sh               a fixed number of runs instead of a time box
#   FUZZ_TARGETS="flags redis_reply" scripts/fuzz.sh
#
# Knobs: FUZZ_SECONDS (per target, default 60), FUZZ_RUNS (mutations per target after the corpus
# is replayed; overrides FUZZ_SECONDS), FUZZ_TARGETS (names without the fuzz_ prefix, default all),
# FUZZ_BUILD_DIR (default build/fuzz), FUZZ_OUT_DIR (corpus, crashes and logs; default the build
# dir), FUZZ_JOBS (build parallelism, default 2), FUZZ_ARGS (more
# libFuzzer flags). Before fuzzing, every file in tests/fuzz/regressions/<target>/ is replayed.
#
# Layout under the build dir (or FUZZ_OUT_DIR): corpus/<target>/ the working corpus (seeds copied in, new inputs
# added; the repo's seeds are never written), crashes/<target>/ crash, leak, timeout and oom
# inputs, logs/<target>.log libFuzzer's output.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build/fuzz}
OUT=${FUZZ_OUT_DIR:-$BUILD}
SECONDS_PER=${FUZZ_SECONDS:-60}
RUNS=${FUZZ_RUNS:-}
JOBS=${FUZZ_JOBS:-2}

die() {
    echo "fuzz.sh: $*" >&2
    exit 2
}

command -v clang >/dev/null ||
    die "clang not found: the fuzz targets need clang and libFuzzer (Debian: clang libclang-rt-14-dev; scripts/deps.sh)"
command -v cmake >/dev/null || die "cmake not found"

all_targets() {
    local f
    for f in "$ROOT"/tests/fuzz/fuzz_*.c; do
        f=${f##*/fuzz_}
        echo "${f%.c}"
    done
}
TARGETS=${FUZZ_TARGETS:-$(all_targets | tr '\n' ' ')}
for t in $TARGETS; do
    [[ -f $ROOT/tests/fuzz/fuzz_$t.c ]] || die "no target '$t' (tests/fuzz/fuzz_$t.c); have: $(all_targets | tr '\n' ' ')"
done

# ---- build ----
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    CC=clang cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Debug \
        -DLOGPROC_FUZZ=ON -DLOGPROC_TESTS=OFF -DLOGPROC_SANITIZE=OFF >"$BUILD.configure.log" 2>&1 ||
        { cat "$BUILD.configure.log" >&2; die "configuring $BUILD failed"; }
    rm -f "$BUILD.configure.log"
fi
grep -q '^CMAKE_C_COMPILER_ID:.*Clang\|^CMAKE_C_COMPILER:.*clang' "$BUILD/CMakeCache.txt" ||
    die "$BUILD was configured with another compiler: remove it and run again"
build_targets=()
for t in $TARGETS; do build_targets+=(--target "fuzz_$t"); done
cmake --build "$BUILD" -j"$JOBS" "${build_targets[@]}" >"$BUILD/build.log" 2>&1 ||
    { tail -40 "$BUILD/build.log" >&2; die "building the fuzz targets failed (log: $BUILD/build.log)"; }

# ---- run ----
# The longest input libFuzzer may build, per target (FUZZ_ARGS=-max_len=N overrides it). The cost
# of a log_request input grows with its size (decode, JSON and Avro of every record in it): with
# 64 KiB inputs its rate fell from 17 000 to 1 500/s as the corpus grew; its seeds are under
# 3 KiB and 4 KiB still nests past the decoder's depth limit. An HTTP request over 8 KiB only adds
# body bytes, which the server counts without parsing.
declare -A MAX_LEN=([log_request]=4096 [http_request]=8192)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:abort_on_error=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/fuzz/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$OUT/logs"
declare -A EXECS CRASHES
failed=0
for t in $TARGETS; do
    bin=$BUILD/fuzz_$t
    corpus=$OUT/corpus/$t
    crashes=$OUT/crashes/$t
    log=$OUT/logs/$t.log
    mkdir -p "$corpus" "$crashes"
    if [[ -d $ROOT/tests/fuzz/corpus/$t ]]; then
        cp -n "$ROOT"/tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
    fi
    before=$(find "$crashes" -type f | wc -l)
    bad=0
    : >"$log"
    # regressions first: each input that once crashed must now run clean
    if compgen -G "$ROOT/tests/fuzz/regressions/$t/*" >/dev/null; then
        for r in "$ROOT"/tests/fuzz/regressions/"$t"/*; do
            if ! (cd "$OUT" && "$bin" "$r") >>"$log" 2>&1; then
                echo "fuzz.sh: $t: regression input ${r#"$ROOT"/} fails" >&2
                bad=$((bad + 1))
            fi
        done
    fi
    if [[ -n $RUNS ]]; then
        limit=(-runs="$RUNS")
    else
        limit=(-max_total_time="$SECONDS_PER")
    fi
    # shellcheck disable=SC2086
    if ! (cd "$OUT" && "$bin" "${limit[@]}" -print_final_stats=1 -timeout=25 -rss_limit_mb=2560 \
        -max_len="${MAX_LEN[$t]:-65536}" -artifact_prefix="$crashes/" ${FUZZ_ARGS:-} "$corpus") >>"$log" 2>&1; then
        bad=$((bad + 1))
    fi
    after=$(find "$crashes" -type f | wc -l)
    new=$((after - before))
    ((new > bad)) && bad=$new
    EXECS[$t]=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo 0)
    CRASHES[$t]=$bad
    if ((bad)); then
        failed=1
        echo "fuzz.sh: $t: crash (log: $log; inputs: $crashes/)" >&2
        grep -m3 -E 'ERROR:|SUMMARY:' "$log" >&2 || true
    fi
done

printf '\n%-20s %14s %8s\n' target executions crashes
for t in $TARGETS; do
    printf '%-20s %14s %8s\n' "$t" "${EXECS[$t]:-0}" "${CRASHES[$t]}"
done
exit $failed
