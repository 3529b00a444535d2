#!/usr/bin/env bash
# Prints the path of the ingest bench binary for the scripts that run it under a tool
# (`ingest-instructions.sh`, `ingest-profile.sh`): the one given, or the one
# `cargo bench --bench ingest --no-run` builds. Fails with a message when there is none.
#
#   benches/ingest-bin.sh [BENCH_BIN]
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -ge 1 ]]; then
    BIN=$(realpath "$1")
else
    BIN=$(cargo bench --bench ingest --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "ingest" and m.get("executable"):
        print(m["executable"])')
fi
[[ -x $BIN ]] || { echo "$0: no bench binary at '$BIN'" >&2; exit 2; }
echo "$BIN"
