#!/usr/bin/env bash
# Where a TURN server's CPU goes per relayed message: kernel against user
# space. Starts one server (samtale-turn, or coturn's turnserver configured as
# turn-bench configures it), drives it with the benchmark's UDP load
# (turnutils_uclient -m SESSIONS -n 5000 -l 1000 -z 1 -c against
# turnutils_peer on loopback), samples it with `perf record` (cpu-clock: this
# machine has no PMU, and /proc's user/system split is tick-sampled and
# misleads at low load), and prints ns of server CPU per relayed message,
# split into kernel and user.
#
# samtale-turn's kernel time alone, set against half of coturn's total, says
# whether 2x coturn's messages per CPU-second is reachable by any change to
# samtale-turn's own code under this load.
#
#   scripts/turn-kernel-floor.sh samtale|coturn SESSIONS
#
# perf slows both servers down; compare figures of one invocation only.
set -euo pipefail

server=${1:?samtale or coturn}
sessions=${2:?sessions}
target=${CARGO_TARGET_DIR:-$HOME/.cache/samtale-target}
work=$(mktemp -d)
trap 'kill -9 ${server_pid:-} ${peer_pid:-} 2>/dev/null || true; rm -rf "$work"' EXIT

case $server in
  samtale)
    port=34780
    cat >"$work/turn.toml" <<EOF
listen_udp = "127.0.0.1:$port"
relay_ports = "50000-59999"
rest_secrets = ["bench-secret"]
allowed_peers = ["127.0.0.1"]
max_allocations_per_user = 100000
max_allocations_total = 100000
metrics_listen = "127.0.0.1:0"
EOF
    RUST_LOG=warn "$target/release/samtale-turn" --config "$work/turn.toml" >/dev/null 2>&1 &
    ;;
  coturn)
    port=34880
    turnserver -n --no-cli --no-dtls --no-tls --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 \
      --listening-port $port --use-auth-secret --static-auth-secret bench-secret --realm samtale \
      --allow-loopback-peers --no-stdout-log --simple-log --log-file /dev/null \
      --min-port 40000 --max-port 49999 --user-quota 0 --total-quota 0 >/dev/null 2>&1 &
    ;;
  *) echo "server: samtale or coturn" >&2; exit 2 ;;
esac
server_pid=$!
turnutils_peer -L 127.0.0.1 -p 34790 >/dev/null 2>&1 &
peer_pid=$!
# Wait until the server's UDP port is bound (at most 5 s).
for _ in $(seq 50); do
  [ -n "$(ss -Hlun "sport = :$port")" ] && break
  sleep 0.1
done

cpu_ns() { awk '{ printf "%.0f\n", ($14 + $15) * 10000000 }' "/proc/$server_pid/stat"; }
before=$(cpu_ns)
perf record -F 2999 -o "$work/perf.data" -p "$server_pid" >/dev/null 2>&1 &
perf_pid=$!
turnutils_uclient -m "$sessions" -n 5000 -l 1000 -z 1 -c -W bench-secret \
  -e 127.0.0.1 -r 34790 -p $port 127.0.0.1 >"$work/uclient.log" 2>&1
after=$(cpu_ns)
kill -INT $perf_pid
wait $perf_pid || true

received=$(grep -o 'tot_recv_msgs=[0-9]*' "$work/uclient.log" | tail -1 | cut -d= -f2)
lost=$(grep -o 'Total lost packets [0-9]*' "$work/uclient.log" | tail -1 | awk '{ print $4 }')
perf report -i "$work/perf.data" --sort sym --stdio 2>/dev/null |
  grep -E '^\s+[0-9.]+%' |
  awk -v cpu=$((after - before)) -v received="$received" -v lost="$lost" \
      -v name="$server" -v sessions="$sessions" '
    { share = $1; sub("%", "", share); if ($2 == "[k]") kernel += share; else user += share }
    END {
      relayed = 2 * received  # to the peer and back
      ns = cpu / relayed
      printf "%s, %d sessions: %d relayed, %s lost, %.2f CPU-s, %.0f msgs per CPU-second\n",
        name, sessions, relayed, lost, cpu / 1e9, 1e9 / ns
      printf "  per message: %.0f ns = kernel %.0f ns (%.1f %%) + user %.0f ns\n",
        ns, ns * kernel / (kernel + user), 100 * kernel / (kernel + user), ns * user / (kernel + user)
    }'
