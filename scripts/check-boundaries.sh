#!/usr/bin/env bash
# Checks the crate graph's one-way rules (docs/architecture.md), from `cargo tree`:
#
# - a venue crate (and the venue contract) never depends on the bus, the runtime,
#   protobuf or tonic: venue code stays testable alone and cannot reach around the engine;
# - the simulator depends on no gekko crate at all, so it stays an independent oracle of
#   the venues' protocols instead of a mirror of the client's bugs.
#
# Normal (non-dev) dependencies only: tests may use anything.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
deps() { cargo tree --locked -p "$1" -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u; }

for crate in gekko-venue gekko-binanceus gekko-coinbase gekko-oanda; do
    bad=$(deps "$crate" | grep -E '^(gekko-bus|gekko-runtime|gekko-proto|gekko-gateway|gekko-config|tonic.*)$' || true)
    if [ -n "$bad" ]; then
        echo "FAIL: $crate depends on: $(echo "$bad" | tr '\n' ' ')" >&2
        fail=1
    else
        echo "ok: $crate has no bus, runtime, proto, gateway, config or tonic dependency"
    fi
done

bad=$(deps gekko-sim | grep -E '^gekko-' | grep -v '^gekko-sim$' || true)
if [ -n "$bad" ]; then
    echo "FAIL: gekko-sim depends on gekko crates: $(echo "$bad" | tr '\n' ' ')" >&2
    fail=1
else
    echo "ok: gekko-sim depends on no gekko crate"
fi
exit "$fail"
