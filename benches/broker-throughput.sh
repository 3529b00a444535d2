#!/usr/bin/env bash
# Broker throughput (issue 15): how many events per second iocd takes in through a 3-node
# NATS Server cluster speaking MQTT (JetStream, stream_replicas 3, as in
# config/nats-cluster.conf and tests/daemon/helpers/nats.rs), next to a single Mosquitto, on
# the same machine.
#
# For each broker (mosquitto, then nats-cluster) it starts the broker on free loopback
# ports, `iocd run` subscribed to it (through node 1 of the cluster), waits for /readyz and a
# warm-up message that crosses the broker, then runs `iocd simulate` at QoS 1 (through node 2
# of the cluster, so every message crosses the cluster) for SECONDS at RATE msg/s, and polls
# iocd's /metrics every half second until iocd_events_total stops growing. It reports what
# the simulator published, what iocd counted, iocd's sustained rate, the CPU seconds of iocd
# and of the broker process(es) during the run, and iocd's peak RSS, as a Markdown table.
#
# Run (a release build; a debug build only shows that the script works):
#   cargo build --release && benches/broker-throughput.sh target/release/iocd [SECONDS] [RATE]
#   SECONDS: how long the simulator publishes (default 30); RATE: its target msg/s (default
#   50000, above what either broker carries on a small machine, so that the figure is the
#   saturated throughput). Needs mosquitto (/usr/sbin is added to PATH), nats-server,
#   python3 (free ports) and curl; MOSQUITTO=/path and NATS_SERVER=/path pick other binaries.
#   Everything runs in a scratch directory that is removed on exit (KEEP_SCRATCH=1 keeps it,
#   with the logs); every process it starts is stopped on exit. Run it on an idle machine.
#
# What the figures mean:
# - events/s is the rate between the first and the last poll at which iocd's count changed
#   (count difference / time difference): the sustained end-to-end rate, start-up excluded.
#   Warm-up events are subtracted from "counted". CPU seconds are those spent from the start
#   of the measured run to the end of the count, summed over the three nodes for NATS.
# - The simulator publishes at QoS 1 with at most 100 publishes in flight, so a broker whose
#   acknowledgement is slow caps it (NATS stores QoS 1 publishes in its replicated JetStream
#   stream). It sends RATE x SECONDS messages whatever the broker's speed: when the broker is
#   slower it generates ever larger batches (its memory grows, shown as its peak RSS) and
#   runs longer than SECONDS; it is stopped with SIGINT after 5 x SECONDS + 60 s.
# - nats-server 2.9 refuses MQTT topics with a '.' and closes the publisher's connection on
#   each (the one-stop topics carry agency codes such as H42.19): the report then says so,
#   and the NATS figures are not a throughput. Releases with nats-server PR #4243 (June
#   2023) map '.' to '//'; give one with NATS_SERVER=$(.ci/nats-server)
set -euo pipefail
export LC_ALL=C
export PATH="/usr/sbin:/usr/local/sbin:$PATH"

usage() {
    echo "usage: $0 IOCD_BIN [SECONDS] [RATE]" >&2
    exit 2
}
[[ $# -ge 1 && $# -le 3 ]] || usage
[[ -x $1 ]] || { echo "$0: $1 is not an executable" >&2; exit 2; }
IOCD_BIN=$(realpath "$1")
DURATION=${2:-30}
RATE=${3:-50000}
[[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || { echo "$0: SECONDS must be a positive integer" >&2; exit 2; }
[[ $RATE =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "$0: RATE must be a positive number" >&2; exit 2; }
MOSQUITTO=${MOSQUITTO:-mosquitto}
NATS_SERVER=${NATS_SERVER:-nats-server}
for tool in "$MOSQUITTO" "$NATS_SERVER" python3 curl; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 2; }
done

PREFIX=bench/v1
POLL=0.5          # seconds between two /metrics polls
STABLE_SECS=3     # the count has stopped growing after this long without a change
DRAIN_MAX=60      # at most this long after the simulator ends
PUB_MAX=$((DURATION * 5 + 60))  # the simulator is stopped (SIGINT) when still publishing then
READY_MAX=60      # at most this long for /readyz and for the warm-up to get through
CLK_TCK=$(getconf CLK_TCK)

SCRATCH=$(mktemp -d -t iocd-broker-bench.XXXXXX)
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

# CPU ticks (user + system) of a live process; 0 when it is gone.
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# Peak resident set of a live process, in kB.
hwm_kb() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
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

# stop PID...: SIGTERM, wait (at most 30 s), then SIGKILL.
stop() {
    local pid
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "$@"; do
        local deadline=$((EPOCHSECONDS + 30))
        while kill -0 "$pid" 2>/dev/null && ((EPOCHSECONDS < deadline)); do
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    forget "$@"
}

# ---- brokers ----

BROKER_PIDS=()
PUB_URL=""
SUB_URL=""

start_mosquitto() {
    local port
    read -r port < <(free_ports 1)
    cat >"$SCRATCH/mosquitto.conf" <<EOF
# Throughput bench: one loopback listener, everything in memory, queues large enough not to
# drop QoS 1 messages while iocd catches up.
per_listener_settings false
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 1000
max_packet_size 1048576
# NATS (Go) disables Nagle on every connection; do the same here for a fair comparison.
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
log_type notice
connection_messages true
EOF
    "$MOSQUITTO" -c "$SCRATCH/mosquitto.conf" >"$SCRATCH/mosquitto.log" 2>&1 &
    PIDS+=($!)
    BROKER_PIDS=($!)
    wait_port "$port" 20 || die "mosquitto did not come up on port $port"
    PUB_URL="mqtt://127.0.0.1:$port"
    SUB_URL="$PUB_URL"
}

start_nats_cluster() {
    local ports i j
    read -ra ports < <(free_ports 12)
    # Node i: client ports[4i], cluster ports[4i+1], MQTT ports[4i+2], monitoring ports[4i+3].
    local routes=()
    for i in 0 1 2; do
        routes+=("nats-route://127.0.0.1:${ports[4 * i + 1]}")
    done
    local joined
    joined=$(IFS=,; echo "${routes[*]}")
    BROKER_PIDS=()
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
mqtt { listen: 127.0.0.1:${ports[4 * i + 2]}, stream_replicas: 3, consumer_replicas: 3 }
EOF
        "$NATS_SERVER" -c "$SCRATCH/nats-n$n.conf" >/dev/null 2>"$SCRATCH/nats-n$n.log" &
        PIDS+=($!)
        BROKER_PIDS+=($!)
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
    # iocd reads from node 1, the simulator publishes to node 2: every event crosses a route.
    SUB_URL="mqtt://127.0.0.1:${ports[2]}"
    PUB_URL="mqtt://127.0.0.1:${ports[6]}"
}

# ---- one broker ----

declare -A R_SIM_RSS R_CAPPED R_PUBLISHED R_PUB_SECS R_SIM_SECS R_REFUSED R_PUB_LINE R_UNACKED R_COUNTED R_DUP R_REJ R_RATE R_IOCD_CPU R_BROKER_CPU R_RSS

bench() {
    local broker=$1
    say "== $broker: starting the broker"
    case $broker in
        mosquitto) start_mosquitto ;;
        nats-cluster) start_nats_cluster ;;
    esac

    local http
    read -r http < <(free_ports 1)
    local cfg="$SCRATCH/iocd-$broker.toml"
    printf '[mqtt]\nclient_id = "bench-%s"\nprefix = "%s"\n' "$broker" "$PREFIX" >"$cfg"
    say "== $broker: starting iocd (subscribed at $SUB_URL, HTTP on 127.0.0.1:$http)"
    RUST_LOG=${RUST_LOG:-warn,iocd=info} "$IOCD_BIN" run --mqtt "$SUB_URL" --listen "127.0.0.1:$http" \
        --data-dir "$SCRATCH/iocd-data-$broker" --config "$cfg" >"$SCRATCH/iocd-$broker.log" 2>&1 &
    local iocd=$!
    PIDS+=("$iocd")

    # Ready: connected and subscribed (a fresh NATS cluster creates its MQTT streams first).
    local deadline=$((EPOCHSECONDS + READY_MAX))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$http/readyz" || true) == 200 ]]; do
        kill -0 "$iocd" 2>/dev/null || die "iocd exited before it was ready"
        ((EPOCHSECONDS < deadline)) || die "iocd not ready after ${READY_MAX} s"
        sleep 0.2
    done

    # Warm-up: a trickle until iocd has counted some of it, so that the broker is known to
    # carry messages end to end (a fresh NATS cluster may still close MQTT connections while
    # it elects its JetStream leaders).
    say "== $broker: iocd ready; warm-up until a message gets through"
    deadline=$((EPOCHSECONDS + READY_MAX))
    local attempt=0
    while (($(events "$http") <= 0)); do
        ((EPOCHSECONDS < deadline)) || die "no warm-up message reached iocd within ${READY_MAX} s"
        attempt=$((attempt + 1))
        "$IOCD_BIN" simulate --mqtt "$PUB_URL" --prefix "$PREFIX" --rate 50 --duration 1s \
            --faults 0 --seed $((1000 + attempt)) >>"$SCRATCH/warmup-$broker.log" 2>&1 || true
        local settle=$((EPOCHSECONDS + 3))
        while (($(events "$http") <= 0 && EPOCHSECONDS < settle)); do sleep 0.2; done
    done
    # Baseline: wait until the warm-up's count is stable.
    local base prev=-2
    base=$(events "$http")
    while ((base != prev)); do
        sleep 1
        prev=$base
        base=$(events "$http")
    done
    say "== $broker: warm-up counted ($base events); publishing at $RATE msg/s for ${DURATION} s to $PUB_URL"

    # The measured run.
    local iocd_cpu0 broker_cpu0=0 pid
    iocd_cpu0=$(cpu_ticks "$iocd")
    for pid in "${BROKER_PIDS[@]}"; do broker_cpu0=$((broker_cpu0 + $(cpu_ticks "$pid"))); done
    local publog="$SCRATCH/simulate-$broker.log" pubrc="$SCRATCH/simulate-$broker.rc"
    local t_pub0
    t_pub0=$(now)
    (
        "$IOCD_BIN" simulate --mqtt "$PUB_URL" --prefix "$PREFIX" --rate "$RATE" \
            --duration "${DURATION}s" --faults 0 --seed 1 >"$publog" 2>&1 &
        echo $! >"$SCRATCH/simulate-$broker.pid"
        rc=0
        wait $! || rc=$?
        echo "$rc $EPOCHREALTIME" >"$pubrc.tmp"
        mv "$pubrc.tmp" "$pubrc"
    ) &
    local sub=$!
    PIDS+=("$sub")
    until [[ -s "$SCRATCH/simulate-$broker.pid" ]]; do sleep 0.05; done
    local sim
    sim=$(cat "$SCRATCH/simulate-$broker.pid")
    PIDS+=("$sim")
    local sim_hwm=0 capped=no

    # Poll until the simulator has ended and the count has not grown for STABLE_SECS.
    local cur last=$base t t_first="" v_first=0 t_last="" v_last=$base t_before=$t_pub0
    local t_change t_pub_end="" pub_rc=""
    t_change=$(now)
    while :; do
        sleep "$POLL"
        t=$(now)
        cur=$(events "$http")
        kill -0 "$iocd" 2>/dev/null || die "iocd exited during the run"
        if [[ -z $t_pub_end ]]; then
            local h
            h=$(hwm_kb "$sim")
            ((h > sim_hwm)) && sim_hwm=$h
            if [[ $capped == no && $(calc "$t - $t_pub0 >= $PUB_MAX" %d) == 1 ]]; then
                say "== $broker: simulator still publishing after ${PUB_MAX} s; stopping it (SIGINT)"
                kill -INT "$sim" 2>/dev/null || true
                capped=yes
            fi
        fi
        if ((cur > last)); then
            if [[ -z $t_first ]]; then
                t_first=$t
                v_first=$cur
            fi
            t_last=$t
            v_last=$cur
            last=$cur
            t_change=$t
        elif [[ -z $t_first ]]; then
            t_before=$t
        fi
        if [[ -z $t_pub_end && -s $pubrc ]]; then
            read -r pub_rc t_pub_end <"$pubrc"
            say "== $broker: simulator done (status $pub_rc) after $(calc "$t_pub_end - $t_pub0") s; iocd has $((cur - base)) so far"
            t_change=$t
        fi
        if [[ -n $t_pub_end ]]; then
            if [[ $(calc "$t - $t_change >= $STABLE_SECS" %d) == 1 ]]; then break; fi
            if [[ $(calc "$t - $t_pub_end >= $DRAIN_MAX" %d) == 1 ]]; then
                say "== $broker: count still growing ${DRAIN_MAX} s after the simulator ended; stopping"
                break
            fi
        fi
    done

    local e d r
    read -r e d r < <(scrape "$http")
    local iocd_cpu1 broker_cpu1=0 rss
    iocd_cpu1=$(cpu_ticks "$iocd")
    for pid in "${BROKER_PIDS[@]}"; do broker_cpu1=$((broker_cpu1 + $(cpu_ticks "$pid"))); done
    rss=$(hwm_kb "$iocd")

    local published unacked line
    line=$(grep 'simulate: done' "$publog" | tail -n 1 || true)
    published=$(sed -n 's/.*: sent \([0-9]*\) .*/\1/p' <<<"$line")
    unacked=$(sed -n 's/.*simulate: \([0-9]*\) publishes were not acknowledged.*/\1/p' "$publog" | tail -n 1)
    [[ $pub_rc == 0 && -n $published ]] || die "the simulator failed (status $pub_rc): $(tail -n 3 "$publog")"

    local counted=$((${e:-$v_last} > v_last ? ${e:-$v_last} - base : v_last - base)) rate
    if [[ -n $t_first && $(calc "$t_last - $t_first > 0" %d) == 1 ]]; then
        rate=$(calc "($v_last - $v_first) / ($t_last - $t_first)" %.0f)
    elif [[ -n $t_last ]]; then
        rate=$(calc "$counted / ($t_last - $t_before)" %.0f)
    else
        rate=0
    fi

    R_PUBLISHED[$broker]=$published
    R_PUB_SECS[$broker]=$(calc "$t_pub_end - $t_pub0")
    R_SIM_SECS[$broker]=$(sed -n 's/.*simulate: done after \([0-9.]*\) s.*/\1/p' <<<"$line")
    # NATS Server before 2.10 refuses MQTT topics with '.' (agency codes such as H42.19 in
    # the one-stop topics) and closes the publisher's connection on each one.
    R_REFUSED[$broker]=$(cat "$SCRATCH"/nats-n*.log 2>/dev/null | grep -c "not supported for MQTT topics" || true)
    R_PUB_LINE[$broker]=$line
    R_UNACKED[$broker]=${unacked:-0}
    R_SIM_RSS[$broker]=$(calc "$sim_hwm / 1024")
    R_CAPPED[$broker]=$capped
    R_COUNTED[$broker]=$counted
    R_DUP[$broker]=$d
    R_REJ[$broker]=$r
    R_RATE[$broker]=$rate
    R_IOCD_CPU[$broker]=$(calc "($iocd_cpu1 - $iocd_cpu0) / $CLK_TCK")
    R_BROKER_CPU[$broker]=$(calc "($broker_cpu1 - $broker_cpu0) / $CLK_TCK")
    R_RSS[$broker]=$(calc "$rss / 1024")
    say "== $broker: published $published, counted $counted ($((e)) in all, duplicate $d, rejected $r), $rate events/s"

    say "== $broker: stopping iocd and the broker"
    stop "$iocd"
    stop "${BROKER_PIDS[@]}"
    wait "$sub" 2>/dev/null || true
    forget "$sub" "$(cat "$SCRATCH/simulate-$broker.pid")"
}

say "iocd: $IOCD_BIN; simulator: ${DURATION} s at $RATE msg/s; scratch: $SCRATCH"
BROKERS=(mosquitto nats-cluster)
for b in "${BROKERS[@]}"; do
    bench "$b"
done

# ---- report ----

echo
echo "## iocd throughput by broker (simulator: ${DURATION} s at $RATE msg/s, QoS 1)"
echo
echo "| broker | published (per simulator) | counted by iocd | events/s | iocd CPU s | broker CPU s | iocd peak RSS MB |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for b in "${BROKERS[@]}"; do
    echo "| $b | ${R_PUBLISHED[$b]} | ${R_COUNTED[$b]} | ${R_RATE[$b]} | ${R_IOCD_CPU[$b]} | ${R_BROKER_CPU[$b]} | ${R_RSS[$b]} |"
done
echo
for b in "${BROKERS[@]}"; do
    echo "- $b: simulator wall time ${R_PUB_SECS[$b]} s, of which publishing and waiting for the acknowledgements ${R_SIM_SECS[$b]} s ($(calc "${R_PUBLISHED[$b]} / ${R_SIM_SECS[$b]}" %.0f) msg/s), ${R_UNACKED[$b]} not acknowledged, simulator peak RSS ${R_SIM_RSS[$b]} MB$([[ ${R_CAPPED[$b]} == yes ]] && echo ", STOPPED after ${PUB_MAX} s"); iocd duplicates ${R_DUP[$b]}, rejected ${R_REJ[$b]}; simulator said: \`${R_PUB_LINE[$b]}\`"
done
if [[ ${R_REFUSED[nats-cluster]:-0} -gt 0 ]]; then
    echo "- WARNING: the NATS cluster closed the simulator's connection ${R_REFUSED[nats-cluster]} times on a topic with '.' (\"characters ' ' and '.' not supported for MQTT topics\": one-stop topics carry agency codes such as H42.19); every publish in flight then was lost, so its figures are not a throughput. NATS Server releases with PR #4243 (June 2023, after 2.9.10) map '.' to '//' instead; run with NATS_SERVER=\$(.ci/nats-server), which fetches one."
fi
if [[ ${R_RATE[mosquitto]} -gt 0 ]]; then
    echo "- NATS cluster / Mosquitto events/s: $(calc "${R_RATE[nats-cluster]} / ${R_RATE[mosquitto]}" %.2f)"
fi
model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "- machine: $(nproc) CPUs, ${model:-unknown CPU}; $("$NATS_SERVER" --version 2>&1 | head -n 1); $({ "$MOSQUITTO" -h 2>&1 || true; } | head -n 1); iocd: $IOCD_BIN"
