"""Drives the Binance.US simulator with Binance's official Python SDK (binance-connector).

The simulator is an oracle for gekko's own client only if the venue's own SDK, written
independently of gekko, accepts it too: its signing, its parameter encoding and its
response parsing. Usage: binance_connector_check.py BASE_URL API_KEY API_SECRET
Exits non-zero with the failing step on stderr.
"""

import sys

from binance.error import ClientError
from binance.spot import Spot


def main() -> None:
    base_url, key, secret = sys.argv[1:4]
    public = Spot(base_url=base_url)
    client = Spot(api_key=key, api_secret=secret, base_url=base_url)

    assert public.ping() == {}, "ping"
    server_time = public.time()["serverTime"]
    assert isinstance(server_time, int), server_time

    info = public.exchange_info(symbol="BTCUSD")
    (btc,) = info["symbols"]
    assert btc["symbol"] == "BTCUSD" and btc["status"] == "TRADING", btc
    tick = next(f for f in btc["filters"] if f["filterType"] == "PRICE_FILTER")["tickSize"]

    depth = public.depth("BTCUSD", limit=5)
    assert depth["lastUpdateId"] > 0 and depth["bids"] and depth["asks"], depth
    best_bid = float(depth["bids"][0][0])
    assert isinstance(depth["bids"][0][0], str), "decimals stay strings on the wire"

    account = client.account()
    assert account["canTrade"] is True, account
    usd = next(b for b in account["balances"] if b["asset"] == "USD")
    assert float(usd["free"]) > 0, usd

    # A resting limit buy well below the market, on the tick.
    step = float(tick)
    price = f"{int(best_bid * 0.9 / step) * step:.2f}"
    placed = client.new_order(
        symbol="BTCUSD",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.001",
        price=price,
        newClientOrderId="sdk-check-1",
    )
    assert placed["status"] == "NEW", placed
    assert placed["clientOrderId"] == "sdk-check-1", placed

    got = client.get_order("BTCUSD", origClientOrderId="sdk-check-1")
    assert got["status"] == "NEW" and got["price"] == placed["price"], got
    open_orders = client.get_open_orders("BTCUSD")
    assert any(o["clientOrderId"] == "sdk-check-1" for o in open_orders), open_orders

    # A duplicate client id is refused with Binance's own code.
    try:
        client.new_order(
            symbol="BTCUSD",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price=price,
            newClientOrderId="sdk-check-1",
        )
        raise AssertionError("duplicate client order id accepted")
    except ClientError as e:
        assert e.error_code == -2010, (e.status_code, e.error_code, e.error_message)

    cancelled = client.cancel_order("BTCUSD", origClientOrderId="sdk-check-1")
    assert cancelled["status"] == "CANCELED", cancelled

    # Unknown order: -2013, the code gekko maps to "not found".
    try:
        client.get_order("BTCUSD", origClientOrderId="sdk-never-sent")
        raise AssertionError("unknown order found")
    except ClientError as e:
        assert e.error_code == -2013, (e.status_code, e.error_code, e.error_message)

    # A wrong secret is refused by signature verification.
    try:
        Spot(api_key=key, api_secret="not-the-secret", base_url=base_url).account()
        raise AssertionError("a wrong signature was accepted")
    except ClientError as e:
        assert e.error_code == -1022, (e.status_code, e.error_code, e.error_message)

    listen_key = client.new_listen_key()["listenKey"]
    assert listen_key, "listen key"
    client.renew_listen_key(listen_key)
    client.close_listen_key(listen_key)
    print("binance-connector: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"check failed: {e}", file=sys.stderr)
        raise
