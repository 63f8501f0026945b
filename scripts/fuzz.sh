#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ (with AddressSanitizer) and runs each for N seconds (default 20)
# from its seed corpus Fuzz/corpus/<target>/. Fails when any target crashes, traps on a broken invariant,
# leaks or hangs, and prints the input that did it and the command that replays it.
#
#   scripts/fuzz.sh              # every target, 20 s each (CI runs this with 10)
#   scripts/fuzz.sh 600          # a long run: 10 minutes each
#   FUZZ_TARGETS="fuzz-napt44 fuzz-stun" scripts/fuzz.sh 60
#   FUZZ_ARGS="-jobs=2 -workers=2" scripts/fuzz.sh 300    # extra libFuzzer options
#
# New inputs that reach new code go to .fuzz/corpus/<target>/ (not committed); to keep some, minimise them
# into the seeds: Fuzz/.build/release/<target> -merge=1 Fuzz/corpus/<target> .fuzz/corpus/<target>
# Findings go to .fuzz/artifacts/. A finding becomes a unit test in the normal suites (see README).
set -uo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
root="$PWD"
build="$root/Fuzz/.build/release"

echo "== building the fuzz targets (release, -sanitize=fuzzer,address)"
swift build -c release --package-path Fuzz -Xswiftc -sanitize=fuzzer,address || { echo "fuzz.sh: build failed" >&2; exit 2; }

targets="${FUZZ_TARGETS:-$(cd Fuzz/Sources && ls -d fuzz-* | tr '\n' ' ')}"
mkdir -p .fuzz/artifacts
# Swift's own backtracer would run inside AddressSanitizer's signal handling: leave reports to libFuzzer.
export SWIFT_BACKTRACE=enable=no
export LSAN_OPTIONS="suppressions=$root/Fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"

failed=()
for t in $targets; do
    mkdir -p ".fuzz/corpus/$t"
    log=".fuzz/$t.log"
    echo "== $t: $seconds s"
    # The scratch corpus first: libFuzzer writes what it finds into the first directory only.
    "$build/$t" ".fuzz/corpus/$t" "Fuzz/corpus/$t" -max_total_time="$seconds" -timeout=10 -max_len=16384 \
        -print_final_stats=1 -artifact_prefix=".fuzz/artifacts/$t-" ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" "$log" | tail -2 | sed 's/^/   /'
    if [ $rc -ne 0 ]; then
        artifact=$(grep -o "Test unit written to [^ ]*" "$log" | tail -1 | sed 's/Test unit written to //')
        echo "!! $t failed (exit $rc)"
        grep -E "invariant broken|Fatal error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|Assertion|SUMMARY" "$log" | head -5 | sed 's/^/   /'
        if [ -n "$artifact" ]; then
            echo "   crashing input: $root/$artifact"
            echo "   replay: SWIFT_BACKTRACE=enable=no $build/$t $root/$artifact"
        fi
        echo "   full log: $root/$log"
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: every target ran $seconds s without a finding"
