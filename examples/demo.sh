#!/usr/bin/env bash
# The spin-redis demo, end to end on a fresh Debian machine:
#   1. installs what is missing (redis-server, toolchains for the examples),
#   2. builds every example handler from source and spin-redis itself,
#   3. starts a private redis-server on a free loopback port,
#   4. runs `spin-redis up` on examples/mixed (compat modules and components
#      side by side), publishes messages with redis-cli, shows what the
#      handlers printed and what the Spin SDK components did through Spin's
#      host APIs (results published on channel "results", counters INCRed
#      in Redis, counts kept in the SQLite key-value store), and stops
#      everything.
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
    [ -n "${sub_pid:-}" ] && kill "$sub_pid" 2>/dev/null || true
    kill "$redis_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
echo "== redis-server on 127.0.0.1:$port"

# A subscriber of its own on "results", where the Spin SDK components publish.
redis-cli -p "$port" --no-raw subscribe results > "$work/results.txt" &
sub_pid=$!
# --state-dir: the key-value store goes to the scratch folder, not beside the manifest.
SPIN_VARIABLE_REDIS_PORT=$port "$bin" up -f examples/mixed -L "$work/logs" --state-dir "$work/state" > "$work/out.txt" 2> "$work/err.txt" &
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
pub names 'count:visits'
pub config 'b=2; a=1'
# 8 messages reach 15 handlers; wait until the three results are published
# and the second visit is counted, then let the rest finish.
for _ in $(seq 1 300); do
    [ "$(grep -c '^3) "' "$work/results.txt" || true)" -ge 3 ] \
        && grep -q 'visits seen 2 times' "$work/out.txt" && break
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
echo "== Spin's host APIs at work"
echo "-- published on channel \"results\" (outbound Redis PUBLISH; a subscriber of our own received them):"
grep '^3) "' "$work/results.txt" | sed 's/^3) /   /'
echo "-- counters the components INCRed (outbound Redis):"
for key in reverse:messages words:messages summary:events; do
    echo "   $key = $(redis-cli -p "$port" get "$key")"
done
echo "-- the default key-value store, Spin's own SQLite file ($work/state/sqlite_key_value.db):"
python3 - "$work/state/sqlite_key_value.db" <<'PY'
import sqlite3, sys
for store, key, value in sqlite3.connect(sys.argv[1]).execute("SELECT store, key, value FROM spin_key_value ORDER BY key"):
    print(f"   [{store}] {key} = {bytes(value).decode(errors='replace')}")
PY
echo
echo "== spin-redis's own log (stderr): failures are reported, nothing stops"
grep -E "WARN|spin-redis:" "$work/err.txt" || true
echo
echo "== per-component log files in $work/logs (deleted on exit):"
ls "$work/logs"
