"""Drives OANDA's official v20 SDK (v20==3.0.25.0) against sim-oanda.

Usage: oanda_v20_check.py REST_PORT STREAM_PORT TOKEN ACCOUNT_ID

Two contexts, like the venue's two hosts: one for REST, one for the streams. Every
call goes through the SDK's own request building and response parsing (its typed
objects), so a field the simulator spells wrong or a status it answers wrong fails here.
Prints "all checks passed" at the end.
"""

import sys

import v20


def expect(cond, what):
    if not cond:
        raise SystemExit("FAILED: " + what)
    print("ok:", what)


def main():
    rest_port, stream_port, token, account = sys.argv[1:5]
    api = v20.Context("127.0.0.1", port=int(rest_port), ssl=False, token=token)
    stream = v20.Context("127.0.0.1", port=int(stream_port), ssl=False, token=token)

    r = api.account.list()
    accounts = r.get("accounts", 200)
    expect([a.id for a in accounts] == [account], "account.list names the account")

    r = api.account.summary(account)
    summary = r.get("account", 200)
    expect(summary.currency == "USD" and float(summary.balance) > 0, "account.summary")
    expect(summary.hedgingEnabled is False, "hedging is off")
    first_tx = int(r.get("lastTransactionID", 200))

    r = api.account.instruments(account, instruments="EUR_USD,USD_JPY")
    instruments = {i.name: i for i in r.get("instruments", 200)}
    expect(set(instruments) == {"EUR_USD", "USD_JPY"}, "account.instruments filters by a comma string")
    eur = instruments["EUR_USD"]
    expect(eur.displayPrecision == 5 and eur.tradeUnitsPrecision == 0, "EUR_USD precisions")
    expect(float(eur.marginRate) > 0 and float(eur.minimumTradeSize) >= 1, "EUR_USD margin rate and minimum")
    expect(instruments["USD_JPY"].displayPrecision == 3, "USD_JPY precision")

    r = api.pricing.get(account, instruments="EUR_USD,USD_JPY")
    prices = r.get("prices", 200)
    expect(len(prices) == 2, "pricing.get returns both instruments")
    p = prices[0]
    expect(p.bids and p.asks and float(p.bids[0].price) < float(p.asks[0].price), "pricing.get bid < ask")
    expect(isinstance(p.bids[0].liquidity, int), "liquidity is an integer")

    r = stream.pricing.stream(account, instruments="EUR_USD,USD_JPY", snapshot=True)
    expect(r.status == 200, "pricing.stream answers 200")
    seen_price = seen_heartbeat = False
    for kind, msg in r.parts():
        if kind == "pricing.ClientPrice":
            expect(msg.instrument in ("EUR_USD", "USD_JPY") and msg.bids, "stream PRICE " + msg.instrument)
            seen_price = True
        elif kind == "pricing.PricingHeartbeat":
            expect(msg.time, "stream HEARTBEAT")
            seen_heartbeat = True
        if seen_price and seen_heartbeat:
            break
    expect(seen_price and seen_heartbeat, "pricing.stream delivered PRICE and HEARTBEAT via .parts()")

    r = api.order.market(
        account,
        instrument="EUR_USD",
        units=100,
        clientExtensions={"id": "sdk-market-1", "tag": "sdk", "comment": "v20 check"},
    )
    expect(r.status == 201, "order.market answers 201 (got %s: %s)" % (r.status, r.body))
    create = r.get("orderCreateTransaction", 201)
    fill = r.get("orderFillTransaction", 201)
    expect(create.type == "MARKET_ORDER" and create.clientExtensions.id == "sdk-market-1", "market create with clientExtensions")
    expect(fill.type == "ORDER_FILL" and fill.tradeOpened is not None, "market fill opened a trade")
    expect(int(fill.id) > int(create.id) > first_tx, "transaction ids increase")
    expect(int(r.get("lastTransactionID", 201)) >= int(fill.id), "lastTransactionID is the newest")

    r = api.order.get(account, "@sdk-market-1")
    expect(r.get("order", 200).id == create.id, "order.get by @clientID")

    r = api.trade.list_open(account)
    trades = r.get("trades", 200)
    expect(any(t.id == fill.tradeOpened.tradeID and t.currentUnits == 100 for t in trades), "trade.list_open shows the trade")

    bid = float(p.bids[0].price) if p.instrument == "EUR_USD" else 1.0
    limit_price = "%.5f" % (bid * 0.9)
    r = api.order.limit(
        account,
        instrument="EUR_USD",
        units=50,
        price=limit_price,
        timeInForce="GTC",
        clientExtensions={"id": "sdk-limit-1"},
    )
    expect(r.status == 201, "order.limit answers 201 (got %s: %s)" % (r.status, r.body))
    limit = r.get("orderCreateTransaction", 201)
    expect(limit.type == "LIMIT_ORDER", "limit create")
    r = api.order.list_pending(account)
    expect(any(o.id == limit.id for o in r.get("orders", 200)), "order.list_pending shows the limit")

    r = api.order.cancel(account, limit.id)
    cancel = r.get("orderCancelTransaction", 200)
    expect(cancel.orderID == limit.id and cancel.reason == "CLIENT_REQUEST", "order.cancel")
    r = api.order.cancel(account, limit.id)
    expect(r.status == 404, "a second cancel is 404")

    r = api.order.market(account, instrument="EUR_USD", units=100000000)
    expect(r.status == 400, "an oversized order is refused")
    reject = r.get("orderRejectTransaction", 400)
    expect(reject.rejectReason == "INSUFFICIENT_MARGIN", "rejectReason INSUFFICIENT_MARGIN")

    r = api.position.close(account, "EUR_USD", longUnits="ALL")
    expect(r.status == 200, "position.close answers 200 (got %s: %s)" % (r.status, r.body))
    closed = r.get("longOrderFillTransaction", 200)
    expect(closed.tradesClosed and float(closed.units) == -100, "position.close closed the long")
    r = api.position.get(account, "EUR_USD")
    pos = r.get("position", 200)
    expect(float(pos.long.units) == 0 and float(pos.short.units) == 0, "the position is flat")

    r = api.account.changes(account, sinceTransactionID=first_tx)
    changes = r.get("changes", 200)
    expect(len(changes.transactions) >= 6 and changes.ordersFilled, "account.changes since the first transaction")

    bad = v20.Context("127.0.0.1", port=int(rest_port), ssl=False, token="wrong")
    r = bad.account.list()
    expect(r.status == 401, "a wrong token is 401")

    unix = v20.Context("127.0.0.1", port=int(rest_port), ssl=False, token=token, datetime_format="UNIX")
    r = unix.account.summary(account)
    created = r.get("account", 200).createdTime
    expect("T" not in created and float(created) > 1e9, "Accept-Datetime-Format UNIX: " + created)

    print("all checks passed")


if __name__ == "__main__":
    main()
