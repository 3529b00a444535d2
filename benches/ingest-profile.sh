#!/usr/bin/env bash
# Where decode + apply spend their wall time, by part of the hot path.
#
# `benches/ingest-instructions.sh` counts instructions, which do not move with the machine,
# but apply is bound by memory latency: it takes three quarters of the time for under half
# the instructions, and callgrind cannot say where it waits. This script samples the time
# instead: perf's software clock (`cpu-clock`, which works on VMs without hardware
# counters), with call stacks, while the ingest bench runs its `decode_apply` group. Only
# the samples inside the measured `State::process_all` are counted (not the corpus, the warm
# state or its clones), each charged to the innermost part of the path on its stack.
#
# Run:
#   benches/ingest-profile.sh [BENCH_BIN]
#   BENCH_BIN: an ingest bench binary (default: built with `cargo bench --bench ingest
#   --no-run`). About 2 minutes. Needs perf (Debian: linux-perf) and
#   kernel.perf_event_paranoid ≤ 2. The heap is in huge pages, as `config/iocd.service`
#   runs the daemon. Figures in docs/performance.md.
set -euo pipefail
export LC_ALL=C

command -v perf >/dev/null || { echo "$0: perf not found (apt-get install linux-perf)" >&2; exit 2; }
cd "$(dirname "$0")/.."

BIN=$(benches/ingest-bin.sh "$@")

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
GLIBC_TUNABLES=glibc.malloc.hugetlb=1 perf record -q -e cpu-clock -F 499 \
    --call-graph dwarf,8192 -o "$OUT/perf.data" -- \
    "$BIN" --bench 'ingest/decode_apply$' --measurement-time 6 --noplot >"$OUT/bench.txt" 2>&1 || {
    cat "$OUT/bench.txt" >&2
    exit 1
}
grep -A2 '^ingest/decode_apply' "$OUT/bench.txt" | grep thrpt || true
perf script -i "$OUT/perf.data" -F ip,sym --inline 2>/dev/null >"$OUT/stacks.txt"
python3 - "$OUT/stacks.txt" <<'EOF'
import collections, sys

# The parts of the path, innermost first: a sample counts for the first one found walking
# its stack from the leaf up.
PARTS = [
    ("Step::decode", "decode (parse and check the payload)"),
    ("prefetch", "lookahead (dedupe slots, dossiers)"),
    ("Dedupe::check_and_insert", "dedupe memory"),
    ("Periods::", "period tallies"),
    ("Tracker::update", "tracker: gauges and member sets"),
    ("class_at", "tracker: class before the event"),
    ("Interner::intern", "agency and procedure interning"),
    ("Dossier::contribution", "dossier's share of the tallies"),
    ("Windows::", "rolling windows"),
    ("VcState::", "video conferencing"),
    ("SocState::", "SOC"),
    ("Dossiers::apply", "dossier store and status machine"),
    ("State::apply", "apply: dispatch and counters"),
    ("State>::take", "apply: dispatch and counters"),
]

stacks, frames = [], []
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        if frames:
            stacks.append(frames)
        frames = []
        continue
    parts = line.split(" ", 1)
    if len(parts) == 2:
        frames.append(parts[1])
if frames:
    stacks.append(frames)

measured = [
    s for s in stacks
    if any("State>::process_all" in f for f in s) and any("iter_batched" in f for f in s)
]
if not measured:
    sys.exit("no sample inside the measured State::process_all (no symbols?)")
counts = collections.Counter()
for s in measured:
    part = next(
        (name for f in s for key, name in PARTS if key in f),
        "other (the loop, allocation)",
    )
    counts[part] += 1
print(f"samples in the measured decode + apply: {len(measured)} of {len(stacks)}")
for part, n in counts.most_common():
    print(f"{100 * n / len(measured):5.1f} %  {part}")
EOF
