#!/usr/bin/env bash
# Replica catch-up (issue 15): the convergence time of a restarted replica, from its checkpoint
# and event log first, then from the backlog the broker kept for it while it was away.
#
# It starts a broker on free loopback ports (a single Mosquitto by default, the 3-node NATS
# Server cluster of config/nats-cluster.conf with BROKER=nats), two `iocd run` replicas A
# and B (each its own client id and data directory, persistent sessions, the same prefix,
# `[store] checkpoint_interval_secs = 10` so that B has a checkpoint as well as a log), waits
# for /readyz on both and for a warm-up message to reach both, then runs `iocd simulate` at
# QoS 1 for RUN_SECONDS + DOWN_SECONDS at RATE msg/s. After RUN_SECONDS it kills B with
# SIGKILL; the broker queues B's messages while the simulator keeps publishing for
# DOWN_SECONDS. Once the simulator has ended and A's iocd_events_total has stopped growing,
# B is started again on the same data directory with the same client id, and polled every
# 100 ms:
#   - ready after: from the start of the process to /readyz 200 (checkpoint read and log
#     replayed, broker connected and subscribed);
#   - converged after: from the start of the process to B's iocd_events_total (every label
#     set summed) reaching A's;
#   - catch-up events/s: backlog / (converged after - ready after), where the backlog is A's
#     final count minus B's count just before the kill.
# It then compares a few one-stop figures of A and B (every series of
# iocd_onestop_dossiers, iocd_onestop_dossiers_overdue and iocd_onestop_period_received) and
# prints a Markdown table.
#
# Run (a release build; a debug build only shows that the script works):
#   cargo build --release && benches/replica-catchup.sh target/release/iocd [RUN_SECONDS] [DOWN_SECONDS] [RATE]
#   RUN_SECONDS: publishing with both replicas up (default 60); DOWN_SECONDS: publishing with
#   B down (default 30); RATE: the simulator's target msg/s (default 2000).
#   BROKER=mosquitto (default) or BROKER=nats. Needs mosquitto (/usr/sbin is added to PATH)
#   or nats-server, python3 (free ports) and curl; MOSQUITTO=/path and NATS_SERVER=/path pick
#   other binaries. Everything runs in a scratch directory that is removed on exit
#   (KEEP_SCRATCH=1 keeps it, with the logs); every process it starts is stopped on exit.
#   NATS_ACK_WAIT (such as 5s) sets the cluster's mqtt { ack_wait } (default 30s): how long
#   it waits before it sends a QoS 1 message again that was not acknowledged.
#   Run it on an idle machine. PUSH_MS (default 100) sets the replicas' [ws] push_interval_ms,
#   which is how often their /metrics figures are refreshed, hence the resolution of the times.
#
# Notes:
# - Replica A reads from node 1 of the NATS cluster, B from node 2, the simulator publishes to
#   node 3. With Mosquitto all three use the one broker, configured with unlimited queues
#   (max_queued_messages 0) so that B's backlog is kept whole; its persistence is off, as the
#   broker stays up.
# - B acknowledges a message only once it is in its log, so the messages in flight when it is
#   killed are sent again: B counts them as duplicates (iocd_events_duplicate_total), not in
#   iocd_events_total, which is what is compared.
# - On the NATS cluster (2.15.1 measured), the messages in flight to B when it was killed,
#   and some sent as it reconnects, come again only after the cluster's mqtt { ack_wait }
#   (30 s by default), counted from the kill and from the restart, and meanwhile they hold
#   the consumer's max_ack_pending: B's count stalls, and converges about ack_wait after its
#   restart. NATS_ACK_WAIT=5s shows the figure following it. The report gives B's longest
#   stretch with the same count, and when it had 90 % of the backlog.
# - nats-server before 2.10 (Debian's 2.9.10) refuses MQTT topics with a '.', which the
#   simulator's one-stop topics have (agency codes such as H42.19), and closes the publisher's
#   connection on each: the script warns, and the NATS figures then cover only what got
#   through. Give a newer one with NATS_SERVER=$(.ci/nats-server)
set -euo pipefail
export LC_ALL=C
export PATH="/usr/sbin:/usr/local/sbin:$PATH"

usage() {
    echo "usage: $0 IOCD_BIN [RUN_SECONDS] [DOWN_SECONDS] [RATE]   (BROKER=mosquitto|nats)" >&2
    exit 2
}
[[ $# -ge 1 && $# -le 4 ]] || usage
[[ -x $1 ]] || { echo "$0: $1 is not an executable" >&2; exit 2; }
IOCD_BIN=$(realpath "$1")
RUN_SECS=${2:-60}
DOWN_SECS=${3:-30}
RATE=${4:-2000}
[[ $RUN_SECS =~ ^[0-9]+$ && $RUN_SECS -gt 0 ]] || { echo "$0: RUN_SECONDS must be a positive integer" >&2; exit 2; }
[[ $DOWN_SECS =~ ^[0-9]+$ ]] || { echo "$0: DOWN_SECONDS must be a non-negative integer" >&2; exit 2; }
[[ $RATE =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "$0: RATE must be a positive number" >&2; exit 2; }
BROKER=${BROKER:-mosquitto}
MOSQUITTO=${MOSQUITTO:-mosquitto}
NATS_SERVER=${NATS_SERVER:-nats-server}
case $BROKER in
    mosquitto) BROKER_BIN=$MOSQUITTO; BROKER_LABEL=mosquitto ;;
    nats) BROKER_BIN=$NATS_SERVER; BROKER_LABEL="nats-cluster (3 nodes)" ;;
    *) echo "$0: BROKER must be mosquitto or nats" >&2; exit 2 ;;
esac
for tool in "$BROKER_BIN" python3 curl; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 2; }
done
if [[ $BROKER == nats ]]; then
    BROKER_VERSION=$("$NATS_SERVER" --version 2>&1 | head -n 1)
else
    BROKER_VERSION=$({ "$MOSQUITTO" -h 2>&1 || true; } | head -n 1)
fi

PREFIX=bench/v1
CHECKPOINT_SECS=10
# The replicas' figures (/metrics included) are refreshed every [ws] push_interval_ms (500 by
# default): 100 here, as often as B is polled, so that the times are not rounded up to 0.5 s.
PUSH_MS=${PUSH_MS:-100}
POLL=0.1          # seconds between two polls of the restarted replica
STABLE_SECS=3     # A's count has stopped growing after this long without a change
DRAIN_MAX=120     # at most this long after the simulator ends
SIM_SECS=$((RUN_SECS + DOWN_SECS))
PUB_MAX=$((SIM_SECS * 5 + 60))  # the simulator is stopped (SIGINT) when still publishing then
READY_MAX=60      # at most this long for /readyz and for the warm-up to get through
CONVERGE_MAX=${CONVERGE_MAX:-600}  # at most this long for B to catch up after its restart
# The one-stop figures compared between A and B at the end (every series of each).
FIGURES=(iocd_onestop_dossiers iocd_onestop_dossiers_overdue iocd_onestop_period_received)

SCRATCH=$(mktemp -d -t iocd-replica-catchup.XXXXXX)
PIDS=()           # every process started, stopped on exit

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    # Give them 5 s to stop, then SIGKILL what is left.
    for _ in $(seq 50); do
        local alive=0
        for pid in "${PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [[ $rc -ne 0 ]]; then
        echo "$0: failed (status $rc); last lines of the logs:" >&2
        for log in "$SCRATCH"/*.log; do
            [[ -e $log ]] || continue
            echo "--- $log" >&2
            tail -n 15 "$log" >&2
        done
    fi
    if [[ ${KEEP_SCRATCH:-0} == 1 ]]; then
        echo "scratch directory kept: $SCRATCH" >&2
    else
        rm -rf "$SCRATCH"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { echo "[$(date +%T)] $*" >&2; }
die() { say "error: $*"; exit 1; }
now() { echo "$EPOCHREALTIME"; }
# Floating-point arithmetic: calc EXPR [printf format].
calc() { awk "BEGIN { printf \"${2:-%.1f}\", ($1) }"; }

# N free loopback TCP ports, all held open at once so that they differ.
free_ports() {
    python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
' "$1"
}

# wait_port PORT SECONDS: until something accepts TCP connections on 127.0.0.1:PORT.
wait_port() {
    local deadline=$((EPOCHSECONDS + $2))
    until python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.5).close()' "$1" 2>/dev/null; do
        ((EPOCHSECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# scrape HTTPPORT: "events duplicate rejected" summed over every label set, or nothing.
scrape() {
    { curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" || true; } | awk '
        /^#/ { next }
        { name = $1; sub(/\{.*/, "", name) }
        name == "iocd_events_total"           { e += $NF; seen = 1 }
        name == "iocd_events_duplicate_total" { d += $NF }
        name == "iocd_events_rejected_total"  { r += $NF }
        END { if (NR > 0) printf "%d %d %d\n", e, d, r }'
}

# events HTTPPORT: iocd_events_total summed, or -1 when /metrics does not answer.
events() {
    local e _d _r
    read -r e _d _r < <(scrape "$1") || true
    echo "${e:--1}"
}

# series HTTPPORT FAMILY...: every series of these families, "name{labels} value", sorted.
series() {
    local port=$1
    shift
    { curl -sf --max-time 5 "http://127.0.0.1:$port/metrics" || true; } | awk -v fams="$*" '
        BEGIN { n = split(fams, f, " "); for (i = 1; i <= n; i++) want[f[i]] = 1 }
        /^#/ { next }
        { name = $1; sub(/\{.*/, "", name) }
        name in want { print }' | sort
}

# readyz HTTPPORT: the HTTP status of /readyz (000 when it does not answer).
readyz() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$1/readyz" || true
}

# forget PID...: no longer ours to stop on exit (already stopped and reaped).
forget() {
    local pid keep=() p
    for p in "${PIDS[@]}"; do
        for pid in "$@"; do [[ $p == "$pid" ]] && continue 2; done
        keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

# ---- brokers ----

URL_A=""          # where replica A connects
URL_B=""          # where replica B connects
PUB_URL=""        # where the simulator publishes

start_mosquitto() {
    local port
    read -r port < <(free_ports 1)
    cat >"$SCRATCH/mosquitto.conf" <<EOF
# Catch-up bench: one loopback listener, everything in memory (the broker stays up), no
# limit on the queue of an offline persistent session, so B's whole backlog is kept.
per_listener_settings false
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages 1000
max_packet_size 1048576
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
log_type notice
connection_messages true
EOF
    "$MOSQUITTO" -c "$SCRATCH/mosquitto.conf" >"$SCRATCH/mosquitto.log" 2>&1 &
    PIDS+=($!)
    wait_port "$port" 20 || die "mosquitto did not come up on port $port"
    PUB_URL="mqtt://127.0.0.1:$port"
    URL_A=$PUB_URL
    URL_B=$PUB_URL
}

start_nats_cluster() {
    local ports i
    read -ra ports < <(free_ports 12)
    # Node i: client ports[4i], cluster ports[4i+1], MQTT ports[4i+2], monitoring ports[4i+3].
    local routes=()
    for i in 0 1 2; do
        routes+=("nats-route://127.0.0.1:${ports[4 * i + 1]}")
    done
    local joined
    joined=$(IFS=,; echo "${routes[*]}")
    local ack_wait=""
    [[ -n ${NATS_ACK_WAIT:-} ]] && ack_wait=", ack_wait: \"$NATS_ACK_WAIT\""
    for i in 0 1 2; do
        local n=$((i + 1))
        # As config/nats-cluster.conf and tests/daemon/helpers/nats.rs: JetStream, one
        # cluster, MQTT with streams and consumers replicated on all three nodes; plus a
        # monitoring port for /healthz.
        cat >"$SCRATCH/nats-n$n.conf" <<EOF
server_name: n$n
listen: 127.0.0.1:${ports[4 * i]}
http: 127.0.0.1:${ports[4 * i + 3]}
jetstream { store_dir: "$SCRATCH/nats-js$n" }
cluster { name: iocd, listen: 127.0.0.1:${ports[4 * i + 1]}, routes: [${joined//,/, }] }
mqtt { listen: 127.0.0.1:${ports[4 * i + 2]}, stream_replicas: 3, consumer_replicas: 3$ack_wait }
EOF
        "$NATS_SERVER" -c "$SCRATCH/nats-n$n.conf" >/dev/null 2>"$SCRATCH/nats-n$n.log" &
        PIDS+=($!)
    done
    for i in 0 1 2; do
        wait_port "${ports[4 * i + 2]}" 20 || die "NATS node n$((i + 1)) did not come up"
    done
    # Every node sees its two routes and reports healthy (JetStream up, meta leader known).
    local deadline=$((EPOCHSECONDS + READY_MAX))
    for i in 0 1 2; do
        local mon=${ports[4 * i + 3]}
        until [[ $(curl -sf --max-time 2 "http://127.0.0.1:$mon/routez" |
            python3 -c 'import json,sys; print(json.load(sys.stdin).get("num_routes", 0))' 2>/dev/null) -ge 2 ]] &&
            curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$mon/healthz"; do
            ((EPOCHSECONDS < deadline)) || die "NATS node n$((i + 1)) never joined the cluster"
            sleep 0.2
        done
    done
    # A reads from node 1, B from node 2, the simulator publishes to node 3.
    URL_A="mqtt://127.0.0.1:${ports[2]}"
    URL_B="mqtt://127.0.0.1:${ports[6]}"
    PUB_URL="mqtt://127.0.0.1:${ports[10]}"
}

# The warning for nats-server < 2.10 (refuses MQTT topics with '.').
NATS_WARNING=""
if [[ $BROKER == nats ]]; then
    ver=$(grep -o 'v[0-9]*\.[0-9]*' <<<"$BROKER_VERSION" | head -n 1 | tr -d v)
    major=${ver%%.*}
    minor=${ver#*.}
    if [[ -z $ver ]] || ((major < 2 || (major == 2 && minor < 10))); then
        NATS_WARNING="WARNING: ${BROKER_VERSION:-nats-server of unknown version} is older than 2.10: it refuses MQTT topics with a '.' (\"characters ' ' and '.' not supported for MQTT topics\"), which the simulator's one-stop topics have (agency codes such as H42.19), and closes the publisher's connection on each, so only part of the stream gets through and the figures are not those of a full stream. Use NATS_SERVER=\$(.ci/nats-server), which fetches one."
        say "$NATS_WARNING"
    fi
fi

# ---- replicas ----

declare -A HTTP DATA PID URL LOG

# start_replica NAME LOGFILE: `iocd run` for replica NAME (config written by setup_replica).
start_replica() {
    local name=$1
    LOG[$name]=$2
    RUST_LOG=${RUST_LOG:-warn,iocd=info} "$IOCD_BIN" run --config "$SCRATCH/iocd-$name.toml" \
        --mqtt "${URL[$name]}" --listen "127.0.0.1:${HTTP[$name]}" \
        --data-dir "${DATA[$name]}" >"$2" 2>&1 &
    PID[$name]=$!
    PIDS+=($!)
}

setup_replica() {
    local name=$1 url=$2 http
    read -r http < <(free_ports 1)
    HTTP[$name]=$http
    DATA[$name]="$SCRATCH/data-$name"
    URL[$name]=$url
    # Its own client id (persistent session: the default), the same prefix, a checkpoint
    # every CHECKPOINT_SECS, and a replica name as in docs/ha.md.
    cat >"$SCRATCH/iocd-$name.toml" <<EOF
[mqtt]
client_id = "catchup-$name"
prefix = "$PREFIX"
persistent_session = true

[store]
checkpoint_interval_secs = $CHECKPOINT_SECS

[ws]
push_interval_ms = $PUSH_MS

[ha]
replica = "$name"
EOF
}

# wait_ready NAME: until /readyz says 200.
wait_ready() {
    local name=$1 deadline=$((EPOCHSECONDS + READY_MAX))
    until [[ $(readyz "${HTTP[$name]}") == 200 ]]; do
        kill -0 "${PID[$name]}" 2>/dev/null || die "replica $name exited before it was ready"
        ((EPOCHSECONDS < deadline)) || die "replica $name not ready after ${READY_MAX} s"
        sleep 0.2
    done
}

# wait_stable NAME: until the count of NAME has not changed for STABLE_SECS (at most
# DRAIN_MAX); prints it.
wait_stable() {
    local name=$1 cur last=-2 t_change=$EPOCHREALTIME t0=$EPOCHSECONDS
    while :; do
        cur=$(events "${HTTP[$name]}")
        kill -0 "${PID[$name]}" 2>/dev/null || die "replica $name exited"
        if ((cur != last)); then
            last=$cur
            t_change=$EPOCHREALTIME
        elif [[ $(calc "$EPOCHREALTIME - $t_change >= $STABLE_SECS" %d) == 1 ]]; then
            break
        fi
        if ((EPOCHSECONDS - t0 >= DRAIN_MAX)); then
            say "replica $name's count still changing after ${DRAIN_MAX} s; taking $cur"
            break
        fi
        sleep 0.5
    done
    echo "$cur"
}

# data_sizes DIR: "total checkpoints log count_of_checkpoints", in bytes.
data_sizes() {
    local dir=$1 total ckpt=0 log=0 n=0 f
    total=$(du -sb "$dir" | awk '{ print $1 }')
    for f in "$dir"/checkpoint-*.bin; do
        [[ -e $f ]] || continue
        ckpt=$((ckpt + $(stat -c %s "$f")))
        n=$((n + 1))
    done
    [[ -d $dir/log ]] && log=$(du -sb "$dir/log" | awk '{ print $1 }')
    echo "$total $ckpt $log $n"
}

say "iocd: $IOCD_BIN; broker: $BROKER_LABEL ($BROKER_VERSION); simulator: ${RUN_SECS} s with both replicas + ${DOWN_SECS} s with B down at $RATE msg/s; scratch: $SCRATCH"
say "starting the broker"
case $BROKER in
    mosquitto) start_mosquitto ;;
    nats) start_nats_cluster ;;
esac

setup_replica a "$URL_A"
setup_replica b "$URL_B"
say "starting replica A ($URL_A, HTTP ${HTTP[a]}) and B ($URL_B, HTTP ${HTTP[b]})"
start_replica a "$SCRATCH/iocd-a.log"
start_replica b "$SCRATCH/iocd-b.log"
wait_ready a
wait_ready b

# Warm-up: a trickle until both have counted some of it, so that the broker is known to carry
# messages end to end to both (a fresh NATS cluster may still close MQTT connections while it
# elects its JetStream leaders), then until both counts are equal and stable.
say "both ready; warm-up until a message reaches both"
deadline=$((EPOCHSECONDS + READY_MAX))
attempt=0
while (($(events "${HTTP[a]}") <= 0 || $(events "${HTTP[b]}") <= 0)); do
    ((EPOCHSECONDS < deadline)) || die "no warm-up message reached both replicas within ${READY_MAX} s"
    attempt=$((attempt + 1))
    "$IOCD_BIN" simulate --mqtt "$PUB_URL" --prefix "$PREFIX" --rate 50 --duration 1s \
        --faults 0 --seed $((1000 + attempt)) >>"$SCRATCH/warmup.log" 2>&1 || true
    settle=$((EPOCHSECONDS + 3))
    while (($(events "${HTTP[a]}") <= 0 || $(events "${HTTP[b]}") <= 0)) && ((EPOCHSECONDS < settle)); do
        sleep 0.2
    done
done
warm_a=$(wait_stable a)
warm_b=$(wait_stable b)
((warm_a == warm_b)) || say "warning: after the warm-up A has $warm_a events and B $warm_b"
say "warm-up counted (A $warm_a, B $warm_b); publishing at $RATE msg/s for ${SIM_SECS} s to $PUB_URL"

# The simulator, in the background for RUN_SECONDS + DOWN_SECONDS.
publog="$SCRATCH/simulate.log"
pubrc="$SCRATCH/simulate.rc"
t_pub0=$(now)
(
    "$IOCD_BIN" simulate --mqtt "$PUB_URL" --prefix "$PREFIX" --rate "$RATE" \
        --duration "${SIM_SECS}s" --faults 0 --seed 1 >"$publog" 2>&1 &
    echo $! >"$SCRATCH/simulate.pid"
    rc=0
    wait $! || rc=$?
    echo "$rc $EPOCHREALTIME" >"$pubrc.tmp"
    mv "$pubrc.tmp" "$pubrc"
) &
sub=$!
PIDS+=("$sub")
until [[ -s "$SCRATCH/simulate.pid" ]]; do sleep 0.05; done
sim=$(cat "$SCRATCH/simulate.pid")
PIDS+=("$sim")

# RUN_SECONDS with both replicas up.
while [[ $(calc "$EPOCHREALTIME - $t_pub0 < $RUN_SECS" %d) == 1 ]]; do
    kill -0 "${PID[a]}" 2>/dev/null || die "replica A exited during the run"
    kill -0 "${PID[b]}" 2>/dev/null || die "replica B exited during the run"
    [[ -s $pubrc ]] && { say "warning: the simulator ended before B was killed: $(tail -n 1 "$publog")"; break; }
    sleep 0.2
done

# Kill B right after its figures were refreshed (every PUSH_MS), so that its count read just
# before is fresh: poll /metrics until the count changes (at most 2 s), then SIGKILL at once.
b_before=$(events "${HTTP[b]}")
fresh_until=$((EPOCHSECONDS + 2))
while ((EPOCHSECONDS < fresh_until)); do
    cur=$(events "${HTTP[b]}")
    ((cur != b_before)) && { b_before=$cur; break; }
done
{ kill -KILL "${PID[b]}" && wait "${PID[b]}"; } 2>/dev/null || true
t_kill=$(now)
a_at_kill=$(events "${HTTP[a]}")
forget "${PID[b]}"
((b_before >= 0)) || die "B's /metrics did not answer before the kill"
read -r d_total d_ckpt d_log d_nckpt < <(data_sizes "${DATA[b]}")
say "killed B (SIGKILL) $(calc "$t_kill - $t_pub0") s into the run with $b_before events counted (A: $a_at_kill); its data dir: $(calc "$d_total / 1048576" %.1f) MB ($d_nckpt checkpoints, $(calc "$d_ckpt / 1048576" %.1f) MB; log $(calc "$d_log / 1048576" %.1f) MB)"
((d_nckpt > 0)) || say "warning: B had no checkpoint yet; its restart replays the log alone"

# The simulator goes on with B down, to its end (stopped with SIGINT after PUB_MAX).
capped=no
until [[ -s $pubrc ]]; do
    kill -0 "${PID[a]}" 2>/dev/null || die "replica A exited during the run"
    if [[ $capped == no && $(calc "$EPOCHREALTIME - $t_pub0 >= $PUB_MAX" %d) == 1 ]]; then
        say "simulator still publishing after ${PUB_MAX} s; stopping it (SIGINT)"
        kill -INT "$sim" 2>/dev/null || true
        capped=yes
    fi
    sleep 0.2
done
read -r pub_rc t_pub_end <"$pubrc"
wait "$sub" 2>/dev/null || true
forget "$sub" "$sim"
pub_line=$(grep 'simulate: done' "$publog" | tail -n 1 || true)
published=$(sed -n 's/.*: sent \([0-9]*\) .*/\1/p' <<<"$pub_line")
unacked=$(sed -n 's/.*simulate: \([0-9]*\) publishes were not acknowledged.*/\1/p' "$publog" | tail -n 1)
if [[ $pub_rc != 0 ]]; then
    say "warning: the simulator ended with status $pub_rc: $(tail -n 2 "$publog" | tr '\n' ' ')"
fi
say "simulator done after $(calc "$t_pub_end - $t_pub0") s (B down for $(calc "$t_pub_end - $t_kill") s of it); waiting for A's count to settle"
a_final=$(wait_stable a)
backlog=$((a_final - b_before))
say "A has $a_final events: B's backlog is $backlog events"

# Restart B on the same data dir and client id; poll every POLL s.
say "restarting B"
t_start=$(now)
start_replica b "$SCRATCH/iocd-b-restart.log"
t_http="" b_first="" t_ready="" t_conv="" b_cur=-1
while :; do
    kill -0 "${PID[b]}" 2>/dev/null || die "replica B exited after its restart"
    if [[ -z $t_ready ]]; then
        # While B recovers, its listener is bound but not served: the request waits, and is
        # answered as soon as the recovery is over.
        code=$(readyz "${HTTP[b]}")
        t=$(now)
        [[ $code != 000 && -z $t_http ]] && t_http=$t
        [[ $code == 200 ]] && t_ready=$t
    fi
    b_cur=$(events "${HTTP[b]}")
    t=$(now)
    echo "$(calc "$t - $t_start" %.3f) $b_cur" >>"$SCRATCH/b-trace.txt"
    [[ -z $b_first && $b_cur -ge 0 ]] && b_first=$b_cur
    if ((b_cur >= a_final)); then
        [[ -z $t_conv ]] && t_conv=$t
        [[ -n $t_ready ]] && break
    fi
    [[ $(calc "$t - $t_start >= $CONVERGE_MAX" %d) == 1 ]] &&
        die "B not converged ${CONVERGE_MAX} s after its restart (B $b_cur of A's $a_final events, ready: ${t_ready:+yes})"
    sleep "$POLL"
done
ready_s=$(calc "$t_ready - $t_start" %.2f)
http_s=$(calc "$t_http - $t_start" %.2f)
conv_s=$(calc "$t_conv - $t_start" %.2f)
if [[ $(calc "$t_conv - $t_ready > 0" %d) == 1 ]]; then
    catchup_rate=$(calc "$backlog / ($t_conv - $t_ready)" %.0f)
else
    catchup_rate="n/a (caught up before /readyz said 200)"
fi
# From B's count over time (seconds since its start, count on /metrics): when it showed 90 %
# of the backlog taken, and its longest stretch showing the same count before converging:
# either no progress (such as messages the broker sends again only after its ack wait) or
# figures not refreshed while the pipeline is busy catching up.
t90=$(awk -v goal="$(calc "$b_before + 0.9 * $backlog" %.0f)" '$2 >= goal { printf "%.2f", $1; exit }' "$SCRATCH/b-trace.txt")
stall=$(awk -v goal="$a_final" '
    $2 < 0 { next }
    last == "" { last = $2; since = $1; next }
    $2 != last {
        if ($1 - since > best) { best = $1 - since; from = since; to = $1; at = last }
        last = $2; since = $1
    }
    END { if (best > 0) printf "%.2f s (from %.2f s to %.2f s after the start, at %d events, %d short)", best, from, to, at, goal - at }' "$SCRATCH/b-trace.txt")
recovered=$(sed 's/\x1b\[[0-9;]*m//g' "$SCRATCH/iocd-b-restart.log" | grep 'State recovered' | tail -n 1 || true)
replayed=$(sed -n 's/.*replayed=\([0-9]*\).*/\1/p' <<<"$recovered")
took_ms=$(sed -n 's/.*took_ms=\([0-9]*\).*/\1/p' <<<"$recovered")
say "B ready after $ready_s s, converged after $conv_s s ($b_cur events)"

# Compare the figures: the same series with the same values on A and B, read a few times
# (the figures are refreshed every push interval, and the overdue ones move with the clock).
equal=no
for _ in $(seq 10); do
    fa=$(series "${HTTP[a]}" "${FIGURES[@]}")
    fb=$(series "${HTTP[b]}" "${FIGURES[@]}")
    if [[ -n $fa && $fa == "$fb" ]]; then
        equal=yes
        break
    fi
    sleep 0.5
done
if [[ $equal == no && -z $fa && -z $fb ]]; then
    equal="n/a (no one-stop series on either)"
elif [[ $equal == no ]]; then
    diff <(echo "$fa") <(echo "$fb") >"$SCRATCH/figures.diff" || true
    say "the figures differ (A <, B >): $(head -n 10 "$SCRATCH/figures.diff" | tr '\n' ' ')"
fi
fig_sums=""
for f in "${FIGURES[@]}"; do
    sa=$(awk -v f="$f" '{ n = $1; sub(/\{.*/, "", n) } n == f { s += $NF; c++ } END { printf "%d series, sum %g", c, s }' <<<"$fa")
    sb=$(awk -v f="$f" '{ n = $1; sub(/\{.*/, "", n) } n == f { s += $NF; c++ } END { printf "%d series, sum %g", c, s }' <<<"$fb")
    fig_sums+="${fig_sums:+; }$f: A $sa, B $sb"
done
# Beyond the three: every iocd_onestop_* series and every iocd_events_total series.
all_equal=no
for _ in $(seq 10); do
    ma=$(curl -sf --max-time 5 "http://127.0.0.1:${HTTP[a]}/metrics" | grep -E '^(iocd_onestop_|iocd_events_total)' | sort || true)
    mb=$(curl -sf --max-time 5 "http://127.0.0.1:${HTTP[b]}/metrics" | grep -E '^(iocd_onestop_|iocd_events_total)' | sort || true)
    if [[ $ma == "$mb" ]]; then
        all_equal=yes
        break
    fi
    sleep 0.5
done
all_diff=""
if [[ $all_equal == no ]]; then
    # The series that differ, by name, with the count of differing lines on each side.
    all_diff=$(diff <(echo "$ma") <(echo "$mb") | awk '
        /^[<>] / { side = ($1 == "<") ? "A" : "B"; n = $2; sub(/\{.*/, "", n); c[n " " side]++ }
        END { for (k in c) { split(k, p, " "); printf "%s (%s: %d lines)\n", p[1], p[2], c[k] } }' | sort | head -n 8 | paste -sd ';' -)
    diff <(echo "$ma") <(echo "$mb") >"$SCRATCH/all-series.diff" || true
fi
read -r a_end a_dup _ < <(scrape "${HTTP[a]}")
read -r b_end b_dup _ < <(scrape "${HTTP[b]}")

# ---- report ----

model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "## Replica catch-up after a SIGKILL (simulator: ${RUN_SECS} s + ${DOWN_SECS} s down at $RATE msg/s, QoS 1; checkpoint every ${CHECKPOINT_SECS} s; figures refreshed every ${PUSH_MS} ms; B polled every $(calc "$POLL * 1000" %.0f) ms)"
echo
echo "| broker | events before kill | backlog while down | B's data dir MB | ready after s | converged after s | catch-up events/s | figures equal |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
echo "| $BROKER_LABEL | $b_before | $backlog | $(calc "$d_total / 1048576" %.1f) | $ready_s | $conv_s | $catchup_rate | $equal |"
echo
echo "- B was killed $(calc "$t_kill - $t_pub0") s into the run and was down $(calc "$t_start - $t_kill") s (the simulator published $(calc "$t_pub_end - $t_kill") s of it). A had $a_at_kill events at the kill and $a_final at the end; B had $b_end at the end (duplicates: A $a_dup, B $b_dup)."
echo "- B's data dir at the kill: $(calc "$d_total / 1048576" %.1f) MB, of which $d_nckpt checkpoint(s) $(calc "$d_ckpt / 1048576" %.1f) MB and the event log $(calc "$d_log / 1048576" %.1f) MB. After the restart it answered HTTP after $http_s s with $b_first events (recovered from disk, plus any of the backlog already taken); its log says: replayed ${replayed:-?} records in ${took_ms:-?} ms. Its /metrics showed 90 % of the backlog taken after ${t90:-?} s; its longest stretch showing the same count before converging: ${stall:-none} (no progress, or figures not refreshed while it caught up)."
echo "- Figures compared (every series, A and B read within a moment): $fig_sums. Every iocd_onestop_* and iocd_events_total series equal: $all_equal${all_diff:+ (differing: ${all_diff//;/; })}."
echo "- Simulator: \`${pub_line:-no summary line}\`, status $pub_rc, ${unacked:-0} not acknowledged$([[ $capped == yes ]] && echo ", STOPPED after ${PUB_MAX} s")."
if [[ -n $NATS_WARNING ]]; then
    refused=$(cat "$SCRATCH"/nats-n*.log 2>/dev/null | grep -c "not supported for MQTT topics" || true)
    echo "- $NATS_WARNING (Connections closed on such a topic in this run: $refused.)"
fi
[[ $BROKER == nats ]] && echo "- NATS: mqtt { ack_wait } ${NATS_ACK_WAIT:-30s (the default)}; A reads from node 1, B from node 2, the simulator publishes to node 3."
echo "- machine: $(nproc) CPUs, ${model:-unknown CPU}; broker: $BROKER_VERSION; iocd: $IOCD_BIN"
