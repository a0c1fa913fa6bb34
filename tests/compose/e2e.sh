#!/usr/bin/env bash
# The docker compose end-to-end test (docs/deploy.md#docker-compose), run by
# scripts/test.sh. With no Docker daemon it prints a loud SKIPPED line and exits 0.
#
# 1. Makes the base image offline (deploy/offline-base.sh) when it is missing, stages
#    the host-built binaries (deploy/docker/stage.sh) and builds every image, tagged
#    :e2e so that nothing of a user's own `docker compose up` is touched.
# 2. `up -d` as project gekkoe2e on free loopback ports, and waits for every
#    container's healthcheck (the time to healthy is printed).
# 3. Places a paper market order on each venue through its gateway's published gRPC
#    port (tests/compose: compose-order), resends it, and checks that each simulator
#    holds exactly one order.
# 3b. MCP over streamable HTTP on the mcp container's published port, with curl and the
#    paper token (deploy/compose/paper/mcp.token): initialize, system_status lists the
#    three routed venues, list_instruments answers from each gateway; no token is 401.
# 4. Cuts Redis off the network (`docker network disconnect`): every gateway and the
#    inference service must answer /readyz 503; reconnects it: all must be ready
#    again, the orders acknowledged before the cut must still be on their durable
#    streams, and a new order must go through.
# 5. Scales gateway-binanceus to two replicas: exactly one reports `leader` and one
#    `standby` on /readyz; an order sent to the standby is forwarded to the leader; then
#    the leader container is killed while orders keep arriving (each retried with its
#    own client id until accepted): the standby takes over, and the simulator holds
#    exactly one order per client id (the failover time is printed).
# 6. Removes every container, network and volume of project gekkoe2e and every image
#    it built (gekko/*:e2e, and gekko-base:bookworm when it made it), on any exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly PROJECT=gekkoe2e
readonly TAG=e2e
readonly BASE=gekko-base:bookworm
readonly HEALTH_TIMEOUT_S=240
readonly CUT_TIMEOUT_S=60
readonly IMAGES=(redis sim-binanceus sim-coinbase sim-oanda gateway-binanceus gateway-coinbase
    gateway-oanda inference configd healthd mcp prometheus alertmanager)
readonly READY_SERVICES=(gateway-binanceus gateway-coinbase gateway-oanda inference configd)

t0=$(date +%s)
say() { echo "compose-e2e [$(($(date +%s) - t0)) s]: $*"; }

if ! docker info >/dev/null 2>&1; then
    echo "=================================================================="
    echo "SKIPPED: compose e2e test: no Docker daemon answers (docker info failed)"
    echo "=================================================================="
    exit 0
fi
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
else
    echo "compose-e2e: FAIL: neither 'docker compose' (v2) nor 'docker-compose' (v1) is installed:" \
        "apt-get install docker-compose" >&2
    exit 1
fi

made_base=0
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    made_base=1
fi

dc() { BASE_IMAGE="$BASE" GEKKO_TAG="$TAG" "${compose[@]}" -p "$PROJECT" "$@"; }

cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "compose-e2e: FAILED (exit $rc); container states and the last log lines:" >&2
        dc ps >&2 || true
        dc logs --no-color --tail=40 >&2 || true
    fi
    dc down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || true
    for i in "${IMAGES[@]}"; do docker image rm -f "gekko/$i:$TAG" >/dev/null 2>&1 || true; done
    if [ "$made_base" -eq 1 ]; then docker image rm -f "$BASE" >/dev/null 2>&1 || true; fi
    say "cleaned up (project $PROJECT, images gekko/*:$TAG)"
    exit "$rc"
}
trap cleanup EXIT

fail() {
    echo "compose-e2e: FAIL: $*" >&2
    exit 1
}

# Free loopback ports for everything compose publishes, so that the test never collides
# with a running gekko or another compose project.
read -r p2 p3 p4 p5 p6 p7 p8 p9 < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(8)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()')
# Set but empty: every replica of gateway-binanceus gets a free loopback port of its own
# (step 5 scales it), found with `port --index`.
export GEKKO_BINANCEUS_GRPC_PORT= GEKKO_COINBASE_GRPC_PORT=$p2 GEKKO_OANDA_GRPC_PORT=$p3
export GEKKO_INFERENCE_GRPC_PORT=$p4 GEKKO_PROMETHEUS_PORT=$p5 GEKKO_ALERTMANAGER_PORT=$p6
export GEKKO_CONFIGD_GRPC_PORT=$p7 GEKKO_HEALTHD_GRPC_PORT=$p8 GEKKO_MCP_PORT=$p9

# ---- 1. images --------------------------------------------------------------------
deploy/offline-base.sh "$BASE"
cargo build --locked -q -p gekko-compose-e2e
deploy/docker/stage.sh
tb=$(date +%s)
dc build >/tmp/gekko-compose-e2e-build.log 2>&1 || {
    tail -40 /tmp/gekko-compose-e2e-build.log >&2
    fail "image build failed (log: /tmp/gekko-compose-e2e-build.log)"
}
say "images built in $(($(date +%s) - tb)) s"
for i in "${IMAGES[@]}"; do
    printf '  %-28s %s MB\n' "gekko/$i:$TAG" \
        "$(($(docker image inspect -f '{{.Size}}' "gekko/$i:$TAG") / 1000000))"
done

# ---- 2. up and healthy --------------------------------------------------------------
tu=$(date +%s)
# `up` itself waits for the service_healthy conditions; a slow first start is retried by
# the loop below rather than failed here.
dc up -d >/tmp/gekko-compose-e2e-up.log 2>&1 || say "up returned non-zero (retrying below): $(tail -3 /tmp/gekko-compose-e2e-up.log)"
deadline=$((tu + HEALTH_TIMEOUT_S))
expected=$(dc config --services | grep -vc '^grafana$')
while :; do
    ids=$(dc ps -q)
    n=0
    healthy=0
    states=""
    for id in $ids; do
        n=$((n + 1))
        s=$(docker inspect -f '{{.Name}}={{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}' "$id")
        states="$states ${s#/}"
        case "$s" in *=healthy) healthy=$((healthy + 1)) ;; esac
    done
    if [ "$n" -eq "$expected" ] && [ "$healthy" -eq "$n" ]; then break; fi
    # A dependent that `up` did not start (its dependency was not healthy yet) is
    # started by the next `up`.
    if [ "$n" -lt "$expected" ]; then dc up -d >/dev/null 2>&1 || true; fi
    if [ "$(date +%s)" -gt "$deadline" ]; then
        fail "not every service healthy within $HEALTH_TIMEOUT_S s ($healthy/$expected):$states"
    fi
    sleep 1
done
say "all $expected services healthy $(($(date +%s) - tu)) s after up"
# The published port of replica N of gateway-binanceus.
bport() { dc port --index="$1" gateway-binanceus 50051 | tail -1 | sed 's/.*://'; }
p1=$(bport 1)
[ -n "$p1" ] || fail "gateway-binanceus publishes no gRPC port"

# ---- 3. a paper order per venue -----------------------------------------------------
order() { # venue port instrument qty client_id
    target/debug/compose-order --grpc "http://127.0.0.1:$2" --venue "$1" --instrument "$3" \
        --qty "$4" --client-order-id "$5" || fail "order on $1 failed"
}
# The simulator's own list of orders (its admin API, from inside its container).
sim_orders() { # venue
    local url
    case "$1" in
        binanceus) url=http://127.0.0.1:9100/sim/admin/orders ;;
        coinbase) url="--cacert /etc/gekko/paper/sim.crt https://localhost:9200/sim/admin/orders" ;;
        oanda) url="--cacert /etc/gekko/paper/sim.crt https://localhost:9300/sim/admin/orders" ;;
    esac
    # shellcheck disable=SC2086
    dc exec -T "sim-$1" curl -fsS $url
}
count_orders() { python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

order binanceus "$p1" BTC-USD 0.001 e2e-binanceus-1
order coinbase "$p2" BTC-USD 0.001 e2e-coinbase-1
order oanda "$p3" EUR-USD 10 e2e-oanda-1
for v in binanceus coinbase oanda; do
    n=$(sim_orders "$v" | count_orders)
    [ "$n" -eq 1 ] || fail "sim-$v holds $n orders after one order sent twice (expected exactly 1)"
done
say "one paper order per venue placed, resent, and held once by each simulator"

# ---- 3b. MCP over HTTP ----------------------------------------------------------------
mcp_url="http://127.0.0.1:$p9/mcp"
mcp_token=$(tr -d '\n' <deploy/compose/paper/mcp.token)
mcp_post() { # extra curl arguments...; the body on stdout
    curl -sS --max-time 30 -X POST "$mcp_url" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' "$@"
}
# The JSON-RPC answer of a body that is JSON or server-sent events.
mcp_result() {
    python3 -c '
import json, sys
text = sys.stdin.read()
msgs = [l[5:].strip() for l in text.splitlines() if l.startswith("data:")] or [text]
for m in msgs:
    try:
        v = json.loads(m)
    except ValueError:
        continue
    if "result" in v or "error" in v:
        print(json.dumps(v)); sys.exit()
sys.exit("no JSON-RPC answer in: " + text[:500])'
}
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"compose-e2e","version":"1"}}}'
code=$(mcp_post -o /dev/null -w '%{http_code}' -d "$init" || true)
[ "$code" = 401 ] || fail "MCP without a token answered HTTP $code (expected 401)"
mcp_post -H "Authorization: Bearer $mcp_token" -D /tmp/gekko-compose-e2e-mcp.h -d "$init" \
    | mcp_result >/tmp/gekko-compose-e2e-mcp.init || fail "MCP initialize failed"
session=$(tr -d '\r' </tmp/gekko-compose-e2e-mcp.h | sed -n 's/^[Mm]cp-[Ss]ession-[Ii]d: *//p' | tail -1)
[ -n "$session" ] || fail "MCP initialize gave no mcp-session-id: $(cat /tmp/gekko-compose-e2e-mcp.init)"
mcp_session() { mcp_post -H "Authorization: Bearer $mcp_token" -H "mcp-session-id: $session" "$@"; }
mcp_session -o /dev/null -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
    || fail "MCP notifications/initialized failed"
mcp_tool() { # id tool arguments-json -> the tool result's structuredContent
    mcp_session -d "{\"jsonrpc\":\"2.0\",\"id\":$1,\"method\":\"tools/call\",\"params\":{\"name\":\"$2\",\"arguments\":$3}}" \
        | mcp_result | python3 -c '
import json, sys
v = json.load(sys.stdin)
r = v.get("result") or sys.exit("tools/call error: " + json.dumps(v))
if r.get("isError"): sys.exit("tool error: " + json.dumps(r))
print(json.dumps(r["structuredContent"]))'
}
status=$(mcp_tool 2 system_status '{}') || fail "MCP system_status: $status"
venues=$(echo "$status" | python3 -c 'import json,sys; print(" ".join(v["venue"] for v in json.load(sys.stdin)["venues"]))')
[ "$venues" = "binanceus coinbase oanda" ] || fail "MCP system_status venues are '$venues': $status"
echo "$status" | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["ready"] else "not ready: %s" % s)' \
    || fail "MCP system_status not ready: $status"
instruments=$(mcp_tool 3 list_instruments '{}') || fail "MCP list_instruments: $instruments"
per_venue=$(echo "$instruments" | python3 -c '
import json, sys
print(" ".join(sorted({i["venue"] for i in json.load(sys.stdin)["instruments"]})))')
[ "$per_venue" = "binanceus coinbase oanda" ] || fail "MCP list_instruments venues are '$per_venue'"
rm -f /tmp/gekko-compose-e2e-mcp.*
say "MCP over HTTP: 401 without a token; system_status lists binanceus coinbase oanda; list_instruments answers from each gateway"

# ---- 4. Redis cut off and back ------------------------------------------------------
readyz() { dc exec -T "$1" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9464/readyz || true; }
wait_all() { # expected-code what
    local end=$(($(date +%s) + CUT_TIMEOUT_S)) s codes ok
    while :; do
        ok=1
        codes=""
        for s in "${READY_SERVICES[@]}"; do
            c=$(readyz "$s")
            codes="$codes $s=$c"
            [ "$c" = "$1" ] || ok=0
        done
        [ "$ok" -eq 1 ] && break
        [ "$(date +%s)" -gt "$end" ] && fail "$2 within $CUT_TIMEOUT_S s:$codes"
        sleep 1
    done
}
network="${PROJECT}_default"
redis_id=$(dc ps -q redis)
tc=$(date +%s)
docker network disconnect "$network" "$redis_id"
wait_all 503 "not every service went not-ready with Redis cut off"
say "Redis cut off: every gateway, inference and configd not ready after $(($(date +%s) - tc)) s"
tr=$(date +%s)
# The alias keeps the service name `redis` resolving to it, as compose set it up.
docker network connect --alias redis "$network" "$redis_id"
wait_all 200 "not every service recovered after Redis came back"
say "Redis reconnected: every service ready again after $(($(date +%s) - tr)) s"
for v in binanceus coinbase oanda; do
    n=$(dc exec -T redis redis-cli XRANGE "gekko:{orders:$v}" - + | grep -c "e2e-$v-1" || true)
    [ "$n" -ge 1 ] || fail "the acknowledged order e2e-$v-1 is missing from gekko:{orders:$v}"
done
[ "$(dc exec -T redis redis-cli CONFIG GET appendonly | tail -1 | tr -d '\r')" = yes ] \
    || fail "Redis runs without AOF"
order binanceus "$p1" BTC-USD 0.001 e2e-binanceus-2
[ "$(sim_orders binanceus | count_orders)" -eq 2 ] || fail "sim-binanceus does not hold exactly 2 orders"
say "acknowledged orders kept on their streams (AOF on), and a new order went through"

# ---- 5. two replicas: one leader, one standby; the leader killed mid-run ---------------
dc up -d --no-recreate --scale gateway-binanceus=2 gateway-binanceus \
    >/tmp/gekko-compose-e2e-scale.log 2>&1 || fail "scale to 2: $(tail -3 /tmp/gekko-compose-e2e-scale.log)"
role() { # container id -> leader|standby|? from the venue's role component on /readyz
    docker exec "$1" curl -s http://127.0.0.1:9464/readyz 2>/dev/null | python3 -c '
import json, sys
try:
    body = json.load(sys.stdin)
except ValueError:
    print("?"); sys.exit()
print(next((c["detail"] for c in body.get("components", []) if c["name"].endswith("-role")), "?"))'
}
end=$(($(date +%s) + HEALTH_TIMEOUT_S))
while :; do
    mapfile -t gws < <(dc ps -q gateway-binanceus)
    roles=""
    healthy=0
    for id in "${gws[@]}"; do
        [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ] && healthy=$((healthy + 1))
        roles="$roles $(role "$id")"
    done
    leaders=$(echo "$roles" | tr ' ' '\n' | grep -c '^leader$' || true)
    standbys=$(echo "$roles" | tr ' ' '\n' | grep -c '^standby$' || true)
    [ "${#gws[@]}" -eq 2 ] && [ "$healthy" -eq 2 ] && [ "$leaders" -eq 1 ] && [ "$standbys" -eq 1 ] && break
    [ "$(date +%s)" -gt "$end" ] && fail "two healthy replicas, one leader and one standby not reached:$roles (healthy $healthy)"
    sleep 1
done
leader="" standby_port=""
for i in 1 2; do
    id=$(dc ps -q gateway-binanceus | sed -n "${i}p")
    # `port --index` and `ps -q` order replicas alike only by chance: match by container.
    for j in 1 2; do
        port=$(bport "$j")
        if docker port "$id" 50051 | grep -q ":$port\$"; then
            if [ "$(role "$id")" = leader ]; then leader=$id; else standby_port=$port; fi
        fi
    done
done
[ -n "$leader" ] && [ -n "$standby_port" ] || fail "cannot tell the leader's container and the standby's port apart"
say "gateway-binanceus scaled to 2: one leader, one standby (standby on port $standby_port)"
before=$(sim_orders binanceus | count_orders)
order binanceus "$standby_port" BTC-USD 0.001 e2e-ha-forwarded
# Orders keep arriving through the standby while the leader is killed; each is retried with
# its own client id until the gateway accepts it, or until it answers that the order never
# reached the venue: an order in flight when the leader died that the new leader's
# reconciliation did not find at the venue is rejected for good under that id (a retry
# answers the same), and must then be absent at the simulator.
ha_orders=8
: >/tmp/gekko-compose-e2e-ha.never
(
    for i in $(seq 1 "$ha_orders"); do
        until err=$(target/debug/compose-order --grpc "http://127.0.0.1:$standby_port" --venue binanceus \
            --instrument BTC-USD --qty 0.001 --client-order-id "e2e-ha-$i" --timeout-s 20 2>&1 >/dev/null); do
            echo "$err" >>/tmp/gekko-compose-e2e-ha.log
            if [[ "$err" == *"never reached the venue"* ]]; then
                echo "e2e-ha-$i" >>/tmp/gekko-compose-e2e-ha.never
                break
            fi
            sleep 0.5
        done
        date +%s.%N >"/tmp/gekko-compose-e2e-ha.$i"
    done
) &
orders_pid=$!
until [ -e /tmp/gekko-compose-e2e-ha.2 ]; do sleep 0.2; done
tk=$(date +%s.%N)
docker kill "$leader" >/dev/null
say "leader container killed after 2 orders"
end=$(($(date +%s) + HEALTH_TIMEOUT_S))
while kill -0 "$orders_pid" 2>/dev/null; do
    [ "$(date +%s)" -gt "$end" ] && { kill "$orders_pid"; fail "orders did not resume after the leader was killed"; }
    sleep 0.5
done
wait "$orders_pid" || fail "the order loop failed"
# The interruption a client saw: the longest wait between two accepted orders after the
# kill (the kill lands between orders 2 and 3).
gap=$(python3 - "$tk" "$ha_orders" <<'PY'
import sys
tk, n = float(sys.argv[1]), int(sys.argv[2])
t = [float(open(f"/tmp/gekko-compose-e2e-ha.{i}").read()) for i in range(1, n + 1)]
after = [tk] + [x for x in t if x > tk]
print(f"{max(b - a for a, b in zip(after, after[1:])):.1f}")
PY
)
mapfile -t never < /tmp/gekko-compose-e2e-ha.never
rm -f /tmp/gekko-compose-e2e-ha.*
say "failover: the longest wait between accepted orders after the leader was killed: $gap s"
mapfile -t ids < <(sim_orders binanceus | python3 -c '
import json, sys
for o in json.load(sys.stdin):
    cid = o.get("clientOrderId") or o.get("client_order_id") or ""
    if cid.startswith("e2e-ha-"): print(cid)')
want=$((ha_orders + 1 - ${#never[@]}))
for n in "${never[@]}"; do
    printf '%s\n' "${ids[@]}" | grep -qx "$n" && fail "$n was answered as never placed, yet sim-binanceus holds it"
done
[ "${#ids[@]}" -eq "$want" ] || fail "sim-binanceus holds ${#ids[@]} HA orders (expected $want: one per accepted client id): ${ids[*]}"
[ "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" -eq "$want" ] || fail "an HA client id was sent twice: ${ids[*]}"
after=$(sim_orders binanceus | count_orders)
[ $((after - before)) -eq "$want" ] || fail "sim-binanceus gained $((after - before)) orders (expected $want)"
say "takeover: exactly one order per accepted client id at the simulator ($want orders; never placed: ${#never[@]})"

say "PASS in $(($(date +%s) - t0)) s"
