#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and prints one summary line per
# target. Needs only stable Rust: RUSTC_BOOTSTRAP lets stable rustc take the nightly flags
# cargo-fuzz passes (-Zsanitizer=address). SANITIZER=none builds without AddressSanitizer.
#
#   fuzz/run-all.sh [SECONDS]
set -uo pipefail

seconds="${1:-60}"
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
# Away from the workspace's target dir: instrumented builds would evict its artifacts.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/herald-fuzz-target}"
sanitizer="${SANITIZER:-address}"

if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked || exit 1
fi
# One build for every target, so that the timed runs below only fuzz.
cargo fuzz build -s "$sanitizer" || exit 1

mkdir -p logs
status=0
for target in $(cargo fuzz list); do
    args=(-max_total_time="$seconds" -print_final_stats=1)
    if [[ -f "dicts/$target.dict" ]]; then
        args+=(-dict="dicts/$target.dict")
    fi
    # New inputs go to the first directory; seeds/ holds a few realistic ones, committed.
    corpora=("corpus/$target")
    [[ -d "seeds/$target" ]] && corpora+=("seeds/$target")
    mkdir -p "corpus/$target"
    log="logs/$target.log"
    if cargo fuzz run -s "$sanitizer" "$target" "${corpora[@]}" -- "${args[@]}" >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see fuzz/$log and fuzz/artifacts/$target/)"
        status=1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$')
    time=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*')
    echo "$target: ${runs:-?} executions in ${time:-?} s, $result"
done
exit "$status"
