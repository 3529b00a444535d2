#!/usr/bin/env bash
# Decode + apply in instructions and simulated cache misses per event: the cost of the hot
# path in figures that do not move with the machine.
#
# `cargo bench --bench ingest` measures events per second, and on these VMs that figure moves
# by a fifth between runs of one binary and by more than twice between hosts (serde_json's
# `Value`, the bench's yardstick, parsed the same payloads at 0.69 M/s on one host and 1.74 on
# another). A change to the hot path worth a few per cent cannot be told from that noise.
# callgrind counts what the code does instead: the same binary on the same input gives the
# same count on any x86_64 machine, whatever else it is doing.
#
# The bench binary (`IOCD_INGEST_ONCE=1`) builds the ingest bench's warm state and applies
# its measured slice once (200,000 events through `State::process_all`, the pipeline's path);
# callgrind collects only inside that call (`ingest_once`). With `--cache-sim` it also
# simulates this machine's first-level and last-level caches: the misses per event show what
# the state's size costs, which the instruction count alone does not.
#
# Run:
#   benches/ingest-instructions.sh [--cache-sim] [BENCH_BIN]
#   BENCH_BIN: an ingest bench binary (default: built with `cargo bench --bench ingest
#   --no-run`), so that two builds can be compared. About 4 minutes (8 with --cache-sim).
#   Needs valgrind. Figures in docs/performance.md.
set -euo pipefail
export LC_ALL=C

CACHE_SIM=no
if [[ ${1:-} == --cache-sim ]]; then
    CACHE_SIM=yes
    shift
fi
command -v valgrind >/dev/null || { echo "$0: valgrind not found (apt-get install valgrind)" >&2; exit 2; }
cd "$(dirname "$0")/.."

BIN=$(benches/ingest-bin.sh "$@")

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
IOCD_INGEST_ONCE=1 valgrind --tool=callgrind --collect-atstart=no \
    --toggle-collect='*ingest_once*' --cache-sim="$CACHE_SIM" \
    --callgrind-out-file="$OUT/callgrind.out" "$BIN" --bench 2>"$OUT/stderr" || {
    cat "$OUT/stderr" >&2
    exit 1
}
EVENTS=$(sed -n 's/^applied the measured slice once: \([0-9]*\) events$/\1/p' "$OUT/stderr")
[[ -n $EVENTS ]] || { cat "$OUT/stderr" >&2; echo "$0: the bench did not apply its slice" >&2; exit 1; }
python3 - "$OUT/callgrind.out" "$EVENTS" "$BIN" <<'EOF'
import sys
path, events, binary = sys.argv[1], int(sys.argv[2]), sys.argv[3]
events_line = summary = None
for line in open(path):
    if line.startswith("events:"):
        events_line = line.split()[1:]
    elif line.startswith("summary:") or line.startswith("totals:"):
        summary = [int(x) for x in line.split()[1:]]
if not events_line or not summary:
    sys.exit(f"no totals in {path}")
totals = dict(zip(events_line, summary))
print(f"bench binary: {binary}")
print(f"events applied: {events:,}")
print(f"instructions per event: {totals['Ir'] / events:,.0f}")
names = {
    "Dr": "data reads", "Dw": "data writes",
    "D1mr": "L1 data read misses", "D1mw": "L1 data write misses",
    "DLmr": "last-level data read misses", "DLmw": "last-level data write misses",
}
for key, name in names.items():
    if key in totals:
        print(f"{name} per event: {totals[key] / events:,.1f}")
EOF
