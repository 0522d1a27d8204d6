#!/usr/bin/env bash
# The spin-redis demo, end to end on a fresh Debian machine:
#   1. installs what is missing (redis-server, toolchains for the examples),
#   2. builds every example handler from source and spin-redis itself,
#   3. starts a private redis-server on a free loopback port,
#   4. runs `spin-redis up` on examples/mixed (compat modules and components
#      side by side), publishes messages with redis-cli, shows what the
#      handlers printed, and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server redis-tools
fi
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null
echo "== building the example handlers (first run installs their toolchains)"
bash examples/build.sh
echo "== building spin-redis"
cargo build --locked --bin spin-redis
bin=target/debug/spin-redis

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >/dev/null &
redis_pid=$!
spin_pid=""
cleanup() {
    [ -n "$spin_pid" ] && kill "$spin_pid" 2>/dev/null || true
    kill "$redis_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
echo "== redis-server on 127.0.0.1:$port"

SPIN_VARIABLE_REDIS_PORT=$port "$bin" up -f examples/mixed -L "$work/logs" > "$work/out.txt" 2> "$work/err.txt" &
spin_pid=$!
for ch in orders events names config; do
    until [ "$(redis-cli -p "$port" pubsub numsub "$ch" | sed -n 2p)" = 1 ]; do
        kill -0 "$spin_pid" 2>/dev/null || { cat "$work/err.txt"; exit 1; }
        sleep 0.1
    done
done
echo "== spin-redis is subscribed; publishing"
pub() { echo "\$ redis-cli publish $1 '$2'"; redis-cli -p "$port" publish "$1" "$2" >/dev/null; }
pub orders 'apple:3'
pub orders 'not an order'
pub events '{"user": "ada", "action": "login"}'
pub events ''
pub names 'world'
pub names 'count:visits'
pub config 'b=2; a=1'
# 7 messages reach 13 handlers; wait until they all reported back.
for _ in $(seq 1 100); do
    [ "$(grep -c '^\[' "$work/out.txt" || true)" -ge 12 ] && break
    sleep 0.1
done
sleep 0.5
kill -TERM "$spin_pid"
wait "$spin_pid" || true
spin_pid=""
echo
echo "== what the handlers printed (stdout, each line prefixed with its component)"
cat "$work/out.txt"
echo
echo "== spin-redis's own log (stderr): failures are reported, nothing stops"
grep -E "WARN|spin-redis:" "$work/err.txt" || true
echo
echo "== per-component log files in $work/logs (deleted on exit):"
ls "$work/logs"
