#!/usr/bin/env bash
# Catch-up through a broker's small in-flight window: how fast iocd takes in a backlog of
# QoS 1 events that waited for it, when the broker lets at most W of them be unacknowledged.
#
# iocd acknowledges a message only once it is in its event log on disk, so with a window of W
# it takes at most W events per round trip of (deliver, log, fsync, PUBACK): the round trip,
# not the CPU, sets the pace. That is the case after an outage or a failover (the backlog of
# the persistent session), and with brokers whose default window is small (Mosquitto's
# max_inflight_messages and VerneMQ's are 20, EMQX's 32). Anything that lengthens the round
# trip (waiting to gather more records per fsync, say) shows here first.
#
# For each window W and rep: a fresh single NATS Server with JetStream and MQTT
# (`max_ack_pending: W`, which NATS enforces per session and subscription), `iocd run`
# started once so that its persistent session exists, then stopped; `mosquitto_pub` publishes
# EVENTS `received` events at QoS 1 on one topic while iocd is away; iocd is started again and
# /metrics polled every 50 ms until its count has not changed for 2 s. The catch-up rate is
# the events counted over the time from /readyz to the last change. A run where the broker
# stopped delivering before the whole backlog was through (NATS does, now and then) is
# reported as stalled and left out of the median. (With `iocd simulate` as the publisher, on
# all three sources' topics, NATS 2.15 left one subscription's backlog undelivered in most
# runs; one topic avoids that.)
#
# Run (a release build):
#   cargo build --release && NATS_SERVER=$(.ci/nats-server) benches/broker-window.sh \
#       target/release/iocd [WINDOWS] [EVENTS] [REPS]
#   WINDOWS: comma-separated (default 20,1024, NATS's default); EVENTS: the backlog (default
#   50000); REPS: runs per window, interleaved (default 3). Needs nats-server 2.10 or later,
#   mosquitto_pub (Debian's mosquitto-clients), python3 and curl. Prints one line per run and the median per window. Figures in
#   docs/durability.md.
set -euo pipefail
export LC_ALL=C

[[ $# -ge 1 && $# -le 4 ]] || { echo "usage: $0 IOCD_BIN [WINDOWS] [EVENTS] [REPS]" >&2; exit 2; }
IOCD_BIN=$(realpath "$1")
IFS=, read -r -a WINDOWS <<<"${2:-20,1024}"
EVENTS=${3:-50000}
REPS=${4:-3}
NATS_SERVER=${NATS_SERVER:-nats-server}
for tool in "$NATS_SERVER" mosquitto_pub python3 curl; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 2; }
done

SCRATCH=$(mktemp -d -t iocd-window-bench.XXXXXX)
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ $rc -ne 0 ]]; then
        for log in "$SCRATCH"/*/*.log; do
            [[ -e $log ]] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }
        done
    fi
    rm -rf "$SCRATCH"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
count() {
    curl -sf "http://127.0.0.1:$HTTP/metrics" | awk '/^iocd_events_total\{/ { n += $2 } END { printf "%d\n", n }'
}
start_iocd() {
    "$IOCD_BIN" run --mqtt "mqtt://127.0.0.1:$MQTT" --listen "127.0.0.1:$HTTP" \
        --data-dir "$RUN/data" >>"$RUN/iocd.log" 2>&1 &
    IOCD=$!
    PIDS+=("$IOCD")
    for _ in $(seq 200); do
        curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null && return
        sleep 0.05
    done
    echo "$0: iocd not ready within 10 s" >&2
    exit 1
}
stop() { kill -TERM "$1"; wait "$1" || true; }
# EVENTS `received` events of distinct dossiers of one agency, one JSON payload a line.
backlog() {
    python3 - "$EVENTS" "$1" <<'PY'
import datetime, sys
n, rep = int(sys.argv[1]), sys.argv[2]
at = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
for i in range(n):
    print('{"event_id":"w%s-%d","type":"received","occurred_at":"%s","dossier_id":"000.00.19.H42-261207-%07d",'
          '"agency":"000.00.19.H42","procedure":"1.001234","channel":"online","due_at":null}' % (rep, i, at, i))
PY
}

one_run() {
    local w=$1 rep=$2
    RUN="$SCRATCH/w$w-$rep"
    mkdir -p "$RUN"
    MQTT=$(free_port) HTTP=$(free_port)
    cat >"$RUN/nats.conf" <<EOF
port: $(free_port)
server_name: window-bench
jetstream { store_dir: "$RUN/js" }
mqtt { port: $MQTT, max_ack_pending: $w }
EOF
    "$NATS_SERVER" -c "$RUN/nats.conf" >"$RUN/nats.log" 2>&1 &
    local nats=$!
    PIDS+=("$nats")
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$MQTT") 2>/dev/null && break
        sleep 0.05
    done
    start_iocd
    stop "$IOCD"
    backlog "$rep" | mosquitto_pub -h 127.0.0.1 -p "$MQTT" -q 1 -l \
        -t ioc/v1/onestop/H42.19/dossier 2>"$RUN/publish.log"
    start_iocd
    local t0 last=-1 changed stable_since n
    t0=$EPOCHREALTIME changed=$t0 stable_since=$t0
    while :; do
        n=$(count)
        if [[ $n != "$last" ]]; then
            last=$n changed=$EPOCHREALTIME stable_since=$EPOCHREALTIME
        elif awk "BEGIN { exit !($EPOCHREALTIME - $stable_since >= 2) }"; then
            break
        fi
        sleep 0.05
    done
    stop "$IOCD"
    stop "$nats"
    local expected=$EVENTS
    if [[ $last -lt $expected ]]; then
        # The broker stopped delivering the backlog: not a rate (reported, left out).
        echo "window $w  rep $rep  stalled: $last of $expected events delivered"
    else
        awk -v w="$w" -v rep="$rep" -v n="$last" -v s="$(awk "BEGIN { print $changed - $t0 }")" \
            'BEGIN { printf "window %5d  rep %d  %7d events in %6.2f s  %8.0f events/s\n", w, rep, n, s, n / s }' |
            tee -a "$SCRATCH/results"
    fi
    rm -rf "$RUN"
}

echo "iocd: $IOCD_BIN; $("$NATS_SERVER" --version); backlog $EVENTS events; $(nproc) cores"
for rep in $(seq "$REPS"); do
    for w in "${WINDOWS[@]}"; do
        one_run "$w" "$rep"
    done
done
for w in "${WINDOWS[@]}"; do
    awk -v w="$w" '$2 == w { print $(NF - 1) }' "$SCRATCH/results" | sort -n |
        awk -v w="$w" '{ r[NR] = $1 } END { if (NR) printf "window %5d  median %8.0f events/s over %d runs\n", w, r[int((NR + 1) / 2)], NR; else printf "window %5d  no complete run\n", w }'
done
