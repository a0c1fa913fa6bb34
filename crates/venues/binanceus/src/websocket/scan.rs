//! The byte scanner in front of the serde parsers: the plain shape of the hot frames
//! (`bookTicker`, `trade`, `depthUpdate`, `executionReport`, `outboundAccountPosition`,
//! bare or in a combined-stream wrapper), read in one pass over the bytes straight into
//! the typed, borrowing structs.
//!
//! It answers only when it is sure: the identifying key first (as Binance writes it),
//! strings without escapes, integers in range, decimals in the plain shape
//! ([`crate::common::decimal`]), every field of the struct present exactly once, no other
//! key that would change what the frame is (`e`, `stream`, `data`, `result`, `code`, or
//! `u` where it is no field), the other keys' values simple (string, number, `true`,
//! `false`, `null`), and nothing but whitespace after the object. Anything else is left
//! to serde (`None`), which then decides and words every error; unit tests check that
//! whatever the scanner answers is what serde would answer.
//!
//! Why a scanner at all: serde_json builds a frame key by key through generic visitors,
//! and a `bookTicker` then costs twice the bare byte scan. Binance's frames are flat and
//! always the same shape, so a scanner that knows the shape can do the same work in one
//! tight loop (gekko issue 13 asks every parser for at least 2× `serde_json::Value`).

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, Error as ValueError};

use super::messages::{
    BinanceUsWsMessage, BookTickerMsg, DepthUpdateMsg, ExecutionReportMsg,
    OutboundAccountPositionMsg, TradeMsg, WsBalance,
};
use crate::common::decimal;
use crate::http::models::Level;

/// Scans one frame; `None` leaves it to serde.
pub(super) fn message(text: &str) -> Option<BinanceUsWsMessage<'_>> {
    let mut s = Scanner::new(text);
    let msg = s.frame(false)?;
    s.ws();
    (s.at == s.b.len()).then_some(msg)
}

/// Keys that decide what a frame is; never skipped as an unknown key.
fn is_marker(key: &str) -> bool {
    matches!(key, "e" | "stream" | "data" | "result" | "code" | "u")
}

/// The fields of one object already read: a bit per field.
#[derive(Default)]
struct Seen(u32);

impl Seen {
    /// `Some(())` the first time `bit` is seen; `None` (leave it to serde, which refuses a
    /// duplicate field) after.
    fn first(&mut self, bit: u32) -> Option<()> {
        let mask = 1 << bit;
        if self.0 & mask != 0 {
            return None;
        }
        self.0 |= mask;
        Some(())
    }

    /// Whether all of the first `n` bits are set.
    fn all(&self, n: u32) -> bool {
        let want = (1u32 << n) - 1;
        self.0 & want == want
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    src: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn new(src: &'a str) -> Self {
        Self {
            b: src.as_bytes(),
            src,
            at: 0,
        }
    }

    /// One message object; `nested` inside a combined wrapper (where a second wrapper is
    /// an error, which serde words).
    fn frame(&mut self, nested: bool) -> Option<BinanceUsWsMessage<'a>> {
        self.ws();
        self.eat(b'{')?;
        self.ws();
        let key = self.string()?;
        self.colon()?;
        match key {
            "e" => match self.string()? {
                "trade" => self.trade().map(BinanceUsWsMessage::Trade),
                "depthUpdate" => self.depth_update().map(BinanceUsWsMessage::DepthUpdate),
                "executionReport" => self
                    .execution_report()
                    .map(|r| BinanceUsWsMessage::ExecutionReport(Box::new(r))),
                "outboundAccountPosition" => self
                    .account_position()
                    .map(BinanceUsWsMessage::OutboundAccountPosition),
                _ => None,
            },
            "u" => self.book_ticker().map(BinanceUsWsMessage::BookTicker),
            "stream" if !nested => {
                let stream = self.string()?;
                self.comma()?;
                if self.string()? != "data" {
                    return None;
                }
                self.colon()?;
                let data = self.frame(true)?;
                self.ws();
                self.eat(b'}')?;
                Some(BinanceUsWsMessage::Combined {
                    stream: Cow::Borrowed(stream),
                    data: Box::new(data),
                })
            }
            _ => None,
        }
    }

    /// The rest of an object whose first entry was read: `field` is called with the
    /// scanner at each value, and answers `None` for a key it does not know.
    fn rest(
        &mut self,
        mut field: impl FnMut(&mut Self, &'a str) -> Option<Option<()>>,
    ) -> Option<()> {
        loop {
            self.ws();
            if self.try_eat(b'}') {
                return Some(());
            }
            self.eat(b',')?;
            self.ws();
            let key = self.string()?;
            self.colon()?;
            match field(self, key) {
                Some(r) => r?,
                None if is_marker(key) => return None,
                None => self.simple_value()?,
            }
        }
    }

    fn book_ticker(&mut self) -> Option<BookTickerMsg<'a>> {
        let update_id = self.u64()?;
        let (mut symbol, mut bid_price, mut bid_qty, mut ask_price, mut ask_qty) = (
            "",
            Decimal::ZERO,
            Decimal::ZERO,
            Decimal::ZERO,
            Decimal::ZERO,
        );
        let mut seen = Seen::default();
        self.rest(|s, key| {
            Some(match key {
                "s" => seen.first(0).and_then(|()| s.string().map(|v| symbol = v)),
                "b" => seen
                    .first(1)
                    .and_then(|()| s.decimal().map(|v| bid_price = v)),
                "B" => seen
                    .first(2)
                    .and_then(|()| s.decimal().map(|v| bid_qty = v)),
                "a" => seen
                    .first(3)
                    .and_then(|()| s.decimal().map(|v| ask_price = v)),
                "A" => seen
                    .first(4)
                    .and_then(|()| s.decimal().map(|v| ask_qty = v)),
                _ => return None,
            })
        })?;
        seen.all(5).then_some(BookTickerMsg {
            update_id,
            symbol: Cow::Borrowed(symbol),
            bid_price,
            bid_qty,
            ask_price,
            ask_qty,
        })
    }

    fn trade(&mut self) -> Option<TradeMsg<'a>> {
        let mut m = TradeMsg {
            event_time: 0,
            symbol: Cow::Borrowed(""),
            trade_id: 0,
            price: Decimal::ZERO,
            qty: Decimal::ZERO,
            trade_time: 0,
            buyer_is_maker: false,
        };
        let mut seen = Seen::default();
        self.rest(|s, key| {
            Some(match key {
                "E" => seen
                    .first(0)
                    .and_then(|()| s.i64().map(|v| m.event_time = v)),
                "s" => seen
                    .first(1)
                    .and_then(|()| s.string().map(|v| m.symbol = Cow::Borrowed(v))),
                "t" => seen.first(2).and_then(|()| s.u64().map(|v| m.trade_id = v)),
                "p" => seen
                    .first(3)
                    .and_then(|()| s.decimal().map(|v| m.price = v)),
                "q" => seen.first(4).and_then(|()| s.decimal().map(|v| m.qty = v)),
                "T" => seen
                    .first(5)
                    .and_then(|()| s.i64().map(|v| m.trade_time = v)),
                "m" => seen
                    .first(6)
                    .and_then(|()| s.boolean().map(|v| m.buyer_is_maker = v)),
                _ => return None,
            })
        })?;
        seen.all(7).then_some(m)
    }

    fn depth_update(&mut self) -> Option<DepthUpdateMsg<'a>> {
        let mut m = DepthUpdateMsg {
            event_time: 0,
            symbol: Cow::Borrowed(""),
            first_update_id: 0,
            last_update_id: 0,
            bids: Vec::new(),
            asks: Vec::new(),
        };
        let mut seen = Seen::default();
        self.rest(|s, key| {
            Some(match key {
                "E" => seen
                    .first(0)
                    .and_then(|()| s.i64().map(|v| m.event_time = v)),
                "s" => seen
                    .first(1)
                    .and_then(|()| s.string().map(|v| m.symbol = Cow::Borrowed(v))),
                "U" => seen
                    .first(2)
                    .and_then(|()| s.u64().map(|v| m.first_update_id = v)),
                "u" => seen
                    .first(3)
                    .and_then(|()| s.u64().map(|v| m.last_update_id = v)),
                "b" => seen.first(4).and_then(|()| s.levels().map(|v| m.bids = v)),
                "a" => seen.first(5).and_then(|()| s.levels().map(|v| m.asks = v)),
                _ => return None,
            })
        })?;
        seen.all(6).then_some(m)
    }

    fn execution_report(&mut self) -> Option<ExecutionReportMsg<'a>> {
        let (mut symbol, mut client_order_id, mut reject_reason) = ("", "", "");
        let (mut orig_client_order_id, mut commission_asset) = (None, None);
        let (mut side, mut order_type, mut time_in_force) = (None, None, None);
        let (mut execution_type, mut status) = (None, None);
        let mut d = [Decimal::ZERO; 8];
        let mut n = [0i64; 4];
        let mut seen = Seen::default();
        self.rest(|s, key| {
            let (bit, r) = match key {
                "E" => (0, s.i64().map(|v| n[0] = v)),
                "s" => (1, s.string().map(|v| symbol = v)),
                "c" => (2, s.string().map(|v| client_order_id = v)),
                "S" => (3, s.variant().map(|v| side = Some(v))),
                "o" => (4, s.variant().map(|v| order_type = Some(v))),
                "f" => (5, s.variant().map(|v| time_in_force = Some(v))),
                "q" => (6, s.decimal().map(|v| d[0] = v)),
                "p" => (7, s.decimal().map(|v| d[1] = v)),
                "x" => (8, s.variant().map(|v| execution_type = Some(v))),
                "X" => (9, s.variant().map(|v| status = Some(v))),
                "r" => (10, s.string().map(|v| reject_reason = v)),
                "i" => (11, s.i64().map(|v| n[1] = v)),
                "l" => (12, s.decimal().map(|v| d[2] = v)),
                "z" => (13, s.decimal().map(|v| d[3] = v)),
                "L" => (14, s.decimal().map(|v| d[4] = v)),
                "n" => (15, s.decimal().map(|v| d[5] = v)),
                "T" => (16, s.i64().map(|v| n[2] = v)),
                "t" => (17, s.i64().map(|v| n[3] = v)),
                "Z" => (18, s.decimal().map(|v| d[6] = v)),
                // Optional: absent is `None`, as with serde's `default`.
                "C" => (19, s.opt_string().map(|v| orig_client_order_id = v)),
                "N" => (20, s.opt_string().map(|v| commission_asset = v)),
                _ => return None,
            };
            // The duplicate check first: serde refuses a repeated field.
            Some(seen.first(bit).and(r))
        })?;
        if !seen.all(19) {
            return None;
        }
        Some(ExecutionReportMsg {
            event_time: n[0],
            symbol: Cow::Borrowed(symbol),
            client_order_id: Cow::Borrowed(client_order_id),
            side: side?,
            order_type: order_type?,
            time_in_force: time_in_force?,
            qty: d[0],
            price: d[1],
            orig_client_order_id: orig_client_order_id.map(Cow::Borrowed),
            execution_type: execution_type?,
            status: status?,
            reject_reason: Cow::Borrowed(reject_reason),
            order_id: n[1],
            last_qty: d[2],
            cum_qty: d[3],
            last_price: d[4],
            commission: d[5],
            commission_asset: commission_asset.map(Cow::Borrowed),
            transaction_time: n[2],
            trade_id: n[3],
            cum_quote_qty: d[6],
        })
    }

    fn account_position(&mut self) -> Option<OutboundAccountPositionMsg<'a>> {
        let mut m = OutboundAccountPositionMsg {
            event_time: 0,
            update_time: 0,
            balances: Vec::new(),
        };
        let mut seen = Seen::default();
        self.rest(|s, key| {
            Some(match key {
                "E" => seen
                    .first(0)
                    .and_then(|()| s.i64().map(|v| m.event_time = v)),
                "u" => seen
                    .first(1)
                    .and_then(|()| s.i64().map(|v| m.update_time = v)),
                "B" => seen
                    .first(2)
                    .and_then(|()| s.array(Self::balance).map(|v| m.balances = v)),
                _ => return None,
            })
        })?;
        seen.all(3).then_some(m)
    }

    fn balance(&mut self) -> Option<WsBalance<'a>> {
        self.eat(b'{')?;
        self.ws();
        let mut b = WsBalance {
            asset: Cow::Borrowed(""),
            free: Decimal::ZERO,
            locked: Decimal::ZERO,
        };
        let mut seen = Seen::default();
        // The first entry by hand, then the rest as any object's.
        let key = self.string()?;
        self.colon()?;
        let mut field = |s: &mut Self, key: &'a str| -> Option<Option<()>> {
            Some(match key {
                "a" => seen
                    .first(0)
                    .and_then(|()| s.string().map(|v| b.asset = Cow::Borrowed(v))),
                "f" => seen.first(1).and_then(|()| s.decimal().map(|v| b.free = v)),
                "l" => seen
                    .first(2)
                    .and_then(|()| s.decimal().map(|v| b.locked = v)),
                _ => return None,
            })
        };
        match field(self, key) {
            Some(r) => r?,
            None if is_marker(key) => return None,
            None => self.simple_value()?,
        }
        self.rest(field)?;
        seen.all(3).then_some(b)
    }

    /// `[["price","qty"], ...]`.
    fn levels(&mut self) -> Option<Vec<Level>> {
        self.array(|s| {
            s.eat(b'[')?;
            s.ws();
            let price = s.decimal()?;
            s.comma()?;
            let qty = s.decimal()?;
            s.ws();
            s.eat(b']')?;
            Some(Level(price, qty))
        })
    }

    /// `[ item, ... ]`.
    fn array<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.eat(b'[')?;
        let mut out = Vec::with_capacity(4);
        self.ws();
        if self.try_eat(b']') {
            return Some(out);
        }
        loop {
            out.push(item(self)?);
            self.ws();
            if self.try_eat(b',') {
                self.ws();
                continue;
            }
            self.eat(b']')?;
            return Some(out);
        }
    }

    /// A unit enum from its wire name, exactly as serde reads it (catch-alls included).
    fn variant<T: Deserialize<'a>>(&mut self) -> Option<T> {
        let s = self.string()?;
        T::deserialize(BorrowedStrDeserializer::<ValueError>::new(s)).ok()
    }

    fn decimal(&mut self) -> Option<Decimal> {
        decimal::parse(self.string()?).ok()
    }

    /// A string or `null`.
    fn opt_string(&mut self) -> Option<Option<&'a str>> {
        if self.b[self.at..].starts_with(b"null") {
            self.at += 4;
            return Some(None);
        }
        self.string().map(Some)
    }

    /// A string without escapes or control characters, borrowed.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let len = self.b[start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if self.b[start + len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        // Both ends are ASCII quotes, so these are char boundaries of `src`.
        self.src.get(start..start + len)
    }

    fn boolean(&mut self) -> Option<bool> {
        for (word, v) in [(&b"true"[..], true), (&b"false"[..], false)] {
            if self.b[self.at..].starts_with(word) {
                self.at += word.len();
                return Some(v);
            }
        }
        None
    }

    /// A JSON integer's digits (no sign): `0` or `[1-9][0-9]*`, not followed by a
    /// fraction or an exponent (serde would read a float, and refuse it).
    fn digits(&mut self) -> Option<u64> {
        let start = self.at;
        let mut v: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.b.get(self.at).copied() {
            v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.at += 1;
        }
        let n = self.at - start;
        if n == 0 || (n > 1 && self.b[start] == b'0') {
            return None;
        }
        if matches!(self.b.get(self.at), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(v)
    }

    fn u64(&mut self) -> Option<u64> {
        self.digits()
    }

    fn i64(&mut self) -> Option<i64> {
        if self.try_eat(b'-') {
            let v = self.digits()?;
            // serde_json reads `-0` as a float (and refuses it for an integer field).
            if v == 0 {
                return None;
            }
            0i64.checked_sub_unsigned(v)
        } else {
            i64::try_from(self.digits()?).ok()
        }
    }

    /// A string, a number, `true`, `false` or `null` (an unknown key's value), skipped.
    fn simple_value(&mut self) -> Option<()> {
        match self.b.get(self.at)? {
            b'"' => self.string().map(drop),
            b't' | b'f' => self.boolean().map(drop),
            b'n' => self.opt_string().and_then(|v| v.is_none().then_some(())),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// Any JSON number, validated by its grammar and skipped.
    fn number(&mut self) -> Option<()> {
        self.try_eat(b'-');
        let int_start = self.at;
        let skip_digits = |s: &mut Self| {
            let start = s.at;
            while s.b.get(s.at).is_some_and(u8::is_ascii_digit) {
                s.at += 1;
            }
            s.at - start
        };
        let n = skip_digits(self);
        if n == 0 || (n > 1 && self.b[int_start] == b'0') {
            return None;
        }
        if self.try_eat(b'.') && skip_digits(self) == 0 {
            return None;
        }
        if matches!(self.b.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.b.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if skip_digits(self) == 0 {
                return None;
            }
        }
        Some(())
    }

    fn colon(&mut self) -> Option<()> {
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(())
    }

    fn comma(&mut self) -> Option<()> {
        self.ws();
        self.eat(b',')?;
        self.ws();
        Some(())
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.at) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.try_eat(c).then_some(())
    }

    fn try_eat(&mut self, c: u8) -> bool {
        if self.b.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }
}
