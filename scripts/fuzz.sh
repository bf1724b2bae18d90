#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (not part of CI), two at a time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]     default: 600 s each, every target
#
# Each target starts from fuzz/seeds/<target> plus whatever fuzz/corpus/<target> gathered in
# earlier runs; crashes land in fuzz/artifacts/<target>/, logs in fuzz/logs/<target>.log.
# Prints, per target: runs executed, exec/s, libFuzzer's last cov/ft figures and "no crash"
# or the artifact path; exits non-zero when any target crashed (or timed out on an input).
#
# Environment: FUZZ_SANITIZER (address, default; "none" for a plain build),
# FUZZ_PARALLEL (fuzzers at once, default 2), FUZZ_TIMEOUT (seconds per input, default 30).
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds=${1:-600}
[[ $# -gt 0 ]] && shift
all=(smtp_reply dsn csv_row template token)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")
sanitizer=${FUZZ_SANITIZER:-address}
parallel=${FUZZ_PARALLEL:-2}
timeout=${FUZZ_TIMEOUT:-30}
export RUSTC_BOOTSTRAP=1
# The workspace may point CARGO_TARGET_DIR elsewhere; the fuzz crate keeps its own.
unset CARGO_TARGET_DIR

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# cargo fuzz's default build: optimised, with debug assertions (`--release` would drop them
# and rebuild everything).
for target in "${targets[@]}"; do
    cargo fuzz build --sanitizer "$sanitizer" "$target"
done
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=fuzz/target/$triple/release

run_one() {
    local target=$1
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target" fuzz/logs
    "$bin_dir/$target" "fuzz/corpus/$target" "fuzz/seeds/$target" \
        -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" \
        >"fuzz/logs/$target.log" 2>&1
}

echo "fuzzing ${targets[*]} for ${seconds}s each, $parallel at a time (sanitizer: $sanitizer)"
declare -A status
running=0
pids=()
for target in "${targets[@]}"; do
    if (( running >= parallel )); then
        wait -n || true
        running=$((running - 1))
    fi
    run_one "$target" &
    pids+=("$!:$target")
    running=$((running + 1))
done
for entry in "${pids[@]}"; do
    pid=${entry%%:*}
    target=${entry#*:}
    if wait "$pid"; then status[$target]=0; else status[$target]=$?; fi
done

failed=0
printf '\n%-12s %12s %8s %8s %8s  %s\n' target runs exec/s cov ft result
for target in "${targets[@]}"; do
    log=fuzz/logs/$target.log
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    if [[ ${status[$target]} -eq 0 && -z $artifact ]]; then
        result="no crash"
    else
        result="CRASH (exit ${status[$target]}) ${artifact:-see $log}"
        failed=1
    fi
    printf '%-12s %12s %8s %8s %8s  %s\n' "$target" "${runs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "$result"
done
exit "$failed"
