#!/usr/bin/env bash
# Runs the unit test suites under AddressSanitizer (with LeakSanitizer) and ThreadSanitizer, each in its
# own build directory (.build-asan, .build-tsan) so the normal .build stays as it is. The end-to-end tests
# are skipped: they start the daemon binary (not instrumented) in network namespaces and need root.
#
#   scripts/sanitize.sh                 # both
#   scripts/sanitize.sh address         # or: thread
#   SANITIZE_FILTER=NAPT44Tests scripts/sanitize.sh thread   # only some suites (swift test --filter)
set -uo pipefail
cd "$(dirname "$0")/.."

sanitizers="${*:-address thread}"
# Swift's backtracer would run inside the sanitizers' signal handling: leave reports to them.
export SWIFT_BACKTRACE=enable=no
# TOMLKit (a dependency) leaks a few dozen bytes per configuration parse: see Fuzz/lsan.supp.
export LSAN_OPTIONS="suppressions=$PWD/Fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"

failed=()
for s in $sanitizers; do
    case "$s" in
        address) scratch=.build-asan ;;
        thread) scratch=.build-tsan ;;
        *) echo "sanitize.sh: unknown sanitizer '$s' (address, thread)" >&2; exit 2 ;;
    esac
    echo "== $s: build ($scratch)"
    start=$(date +%s)
    if ! swift build --build-tests --sanitize="$s" --scratch-path "$scratch"; then
        failed+=("$s (build)")
        continue
    fi
    echo "== $s: test (built in $(( $(date +%s) - start )) s)"
    start=$(date +%s)
    if ! swift test --skip-build --sanitize="$s" --scratch-path "$scratch" --skip EndToEndTests ${SANITIZE_FILTER:+--filter "$SANITIZE_FILTER"}; then
        failed+=("$s")
    fi
    echo "== $s: tests took $(( $(date +%s) - start )) s"
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "sanitize.sh: failed under: ${failed[*]}" >&2
    exit 1
fi
echo "sanitize.sh: clean under $sanitizers"
