"""Drives the Coinbase simulator with Coinbase's official Python SDK (coinbase-advanced-py).

The simulator is an oracle for gekko's own Coinbase client only if the venue's own SDK,
written independently of gekko, accepts it too: its JWTs (REST with `uri`, websocket
without), its URLs, its request bodies and its response parsing.

Usage: coinbase_advanced_check.py REST_HOST WS_URL WS_USER_URL KEY_NAME KEY_PEM_FILE CERT_FILE
  REST_HOST     e.g. 127.0.0.1:9200 (the SDK always builds https://REST_HOST)
  WS_URL        e.g. wss://127.0.0.1:9201 (market data)
  WS_USER_URL   e.g. wss://127.0.0.1:9202 (user orders)
  KEY_PEM_FILE  the API key's private key (EC P-256 PEM)
  CERT_FILE     the simulator's TLS certificate, the only one trusted
Prints "all checks passed" at the end; exits non-zero with the failing step otherwise.
"""

import json
import ssl
import sys
import threading
import time
from decimal import Decimal

from coinbase.rest import RESTClient
from coinbase.websocket import WSClient, WSUserClient
from coinbase.websocket import websocket_base
from coinbase.websocket.types.websocket_response import WebsocketResponse


def rest_checks(rest_host, key_name, key_pem, cert):
    client = RESTClient(api_key=key_name, api_secret=key_pem, base_url=rest_host)
    # Trust exactly the simulator's certificate; ignore REQUESTS_CA_BUNDLE and proxies.
    client.session.verify = cert
    client.session.trust_env = False

    accounts = client.get_accounts().to_dict()
    usd = next(a for a in accounts["accounts"] if a["currency"] == "USD")
    assert Decimal(usd["available_balance"]["value"]) > 0, usd
    assert isinstance(usd["available_balance"]["value"], str), "money is a string"

    products = client.get_products().to_dict()
    ids = {p["product_id"] for p in products["products"]}
    assert {"BTC-USD", "ETH-USD"} <= ids, ids
    btc = next(p for p in products["products"] if p["product_id"] == "BTC-USD")
    tick = Decimal(btc["quote_increment"])

    books = client.get_best_bid_ask(product_ids=["BTC-USD"]).to_dict()
    (book,) = books["pricebooks"]
    bid = Decimal(book["bids"][0]["price"])
    ask = Decimal(book["asks"][0]["price"])
    assert bid < ask, book

    # A resting limit buy well below the market, on the tick grid.
    price = ((bid * Decimal("0.9")) / tick).to_integral_value() * tick
    placed = client.limit_order_gtc_buy(
        client_order_id="sdk-cb-1",
        product_id="BTC-USD",
        base_size="0.001",
        limit_price=str(price),
    ).to_dict()
    assert placed["success"] is True, placed
    order_id = placed["success_response"]["order_id"]
    assert placed["success_response"]["client_order_id"] == "sdk-cb-1", placed

    got = client.get_order(order_id).to_dict()["order"]
    assert got["status"] == "OPEN" and got["client_order_id"] == "sdk-cb-1", got
    assert Decimal(got["order_configuration"]["limit_limit_gtc"]["limit_price"]) == price, got

    listed = client.list_orders(order_status=["OPEN"]).to_dict()
    assert any(o["order_id"] == order_id for o in listed["orders"]), listed

    # The same client_order_id again: the original order, not a second one.
    again = client.limit_order_gtc_buy(
        client_order_id="sdk-cb-1",
        product_id="BTC-USD",
        base_size="0.001",
        limit_price=str(price),
    ).to_dict()
    assert again["success_response"]["order_id"] == order_id, again

    cancelled = client.cancel_orders(order_ids=[order_id]).to_dict()
    (result,) = cancelled["results"]
    assert result["success"] is True and result["order_id"] == order_id, cancelled
    got = client.get_order(order_id).to_dict()["order"]
    assert got["status"] == "CANCELLED", got

    bought = client.market_order_buy(
        client_order_id="sdk-cb-2", product_id="BTC-USD", quote_size="100"
    ).to_dict()
    assert bought["success"] is True, bought
    market_id = bought["success_response"]["order_id"]
    got = client.get_order(market_id).to_dict()["order"]
    assert got["status"] == "FILLED", got
    fills = client.get_fills(order_ids=[market_id]).to_dict()["fills"]
    assert fills and all(f["order_id"] == market_id for f in fills), fills
    spent = sum(Decimal(f["price"]) * Decimal(f["size"]) for f in fills)
    assert abs(spent - Decimal("100")) <= Decimal("0.01"), spent
    print("rest: accounts, products, best bid/ask, limit order life, market order fills")


def trust_only(cert):
    """The SDK's websocket opens `websockets.connect(..., ssl=ssl.SSLContext())`, a context
    that verifies nothing, and takes no context from its caller. Point that one name at a
    context that trusts exactly the simulator's certificate (and checks the host name),
    so this check proves the simulator's wss is a TLS server a verifying client accepts."""

    class _Ssl:
        def __getattr__(self, name):
            return getattr(ssl, name)

        @staticmethod
        def SSLContext(*_args, **_kwargs):
            return ssl.create_default_context(cafile=cert)

    websocket_base.ssl = _Ssl()


def ws_checks(ws_url, key_name, key_pem, cert):
    trust_only(cert)
    messages = []
    lock = threading.Lock()

    def on_message(raw):
        with lock:
            messages.append(json.loads(raw))

    ws = WSClient(
        api_key=key_name,
        api_secret=key_pem,
        base_url=ws_url,
        on_message=on_message,
        retry=False,
        timeout=10,
    )
    ws.open()
    ws.subscribe(product_ids=["BTC-USD"], channels=["ticker", "level2", "heartbeats"])

    def seen():
        with lock:
            return list(messages)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        msgs = seen()
        channels = {m.get("channel") for m in msgs}
        snapshots = [m for m in msgs if m.get("channel") == "l2_data"
                     and m["events"][0]["type"] == "snapshot"]
        updates = [m for m in msgs if m.get("channel") == "l2_data"
                   and m["events"][0]["type"] == "update"]
        beats = [m for m in msgs if m.get("channel") == "heartbeats"]
        if {"subscriptions", "ticker", "l2_data", "heartbeats"} <= channels and \
                snapshots and updates and len(beats) >= 2:
            break
        ws.sleep_with_exception_check(0.1)
    ws.close()
    msgs = seen()
    errors = [m for m in msgs if m.get("type") == "error"]
    assert not errors, errors
    channels = {m.get("channel") for m in msgs}
    assert {"subscriptions", "ticker", "l2_data", "heartbeats"} <= channels, channels
    # Parse every message with the SDK's own response types.
    parsed = [WebsocketResponse(json.loads(json.dumps(m))) for m in msgs]
    seqs = [p.sequence_num for p in parsed]
    assert seqs == list(range(len(seqs))), seqs
    snap = next(p for p in parsed if p.channel == "l2_data")
    assert snap.events[0].type == "snapshot" and snap.events[0].product_id == "BTC-USD"
    sides = {u.side for u in snap.events[0].updates}
    assert sides == {"bid", "offer"}, sides
    for u in snap.events[0].updates:
        Decimal(u.price_level), Decimal(u.new_quantity)
    ticker = next(p for p in parsed if p.channel == "ticker")
    t = ticker.events[0].tickers[0]
    assert t.product_id == "BTC-USD" and Decimal(t.best_bid) < Decimal(t.best_ask), t
    beats = [p for p in parsed if p.channel == "heartbeats"]
    counters = [b.events[0].heartbeat_counter for b in beats]
    assert len(counters) >= 2 and counters[1] == counters[0] + 1, counters
    print(f"ws: {len(msgs)} messages, sequence 0..{seqs[-1]}, ticker, level2, heartbeats")


def user_checks(rest_host, ws_user_url, key_name, key_pem, cert):
    """The user host with the SDK's WSUserClient: a resting order is in the snapshot,
    and cancelling it arrives as an update, both parsed by the SDK's types."""
    trust_only(cert)
    rest = RESTClient(api_key=key_name, api_secret=key_pem, base_url=rest_host)
    rest.session.verify = cert
    rest.session.trust_env = False
    book = rest.get_best_bid_ask(product_ids=["BTC-USD"]).to_dict()["pricebooks"][0]
    price = (Decimal(book["bids"][0]["price"]) * Decimal("0.8")).quantize(Decimal("0.01"))
    placed = rest.limit_order_gtc_buy(
        client_order_id="sdk-cb-user-1",
        product_id="BTC-USD",
        base_size="0.002",
        limit_price=str(price),
    ).to_dict()
    order_id = placed["success_response"]["order_id"]

    messages = []
    lock = threading.Lock()

    def on_message(raw):
        with lock:
            messages.append(json.loads(raw))

    def user_orders():
        """(event type, order) of every `user` message so far, parsed by the SDK."""
        with lock:
            msgs = [json.loads(json.dumps(m)) for m in messages if m.get("channel") == "user"]
        out = []
        for m in msgs:
            event = WebsocketResponse(m).events[0]
            out.extend((event.type, o) for o in event.orders or [])
        return out

    ws = WSUserClient(
        api_key=key_name,
        api_secret=key_pem,
        base_url=ws_user_url,
        on_message=on_message,
        retry=False,
        timeout=10,
    )
    ws.open()
    ws.subscribe(product_ids=["BTC-USD"], channels=["user", "heartbeats"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(t == "snapshot" for t, _ in user_orders()):
        ws.sleep_with_exception_check(0.1)
    snap = [o for t, o in user_orders() if t == "snapshot"]
    assert any(o.order_id == order_id and o.status == "OPEN" for o in snap), snap
    rest.cancel_orders(order_ids=[order_id])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        updates = [o for t, o in user_orders() if t == "update" and o.order_id == order_id]
        if any(o.status == "CANCELLED" for o in updates):
            break
        ws.sleep_with_exception_check(0.1)
    ws.close()
    with lock:
        errors = [m for m in messages if m.get("type") == "error"]
    assert not errors, errors
    updates = [o for t, o in user_orders() if t == "update" and o.order_id == order_id]
    assert any(o.status == "CANCELLED" for o in updates), updates
    Decimal(updates[-1].leaves_quantity), Decimal(updates[-1].limit_price)
    print("ws user: snapshot with the open order, its cancel as an update")


def main() -> None:
    rest_host, ws_url, ws_user_url, key_name, key_file, cert = sys.argv[1:7]
    with open(key_file, encoding="utf-8") as f:
        key_pem = f.read()
    rest_checks(rest_host, key_name, key_pem, cert)
    ws_checks(ws_url, key_name, key_pem, cert)
    user_checks(rest_host, ws_user_url, key_name, key_pem, cert)
    print("all checks passed")


if __name__ == "__main__":
    main()
