//! A hand-written scanner for the common shape of a pricing-stream line, in front of the
//! serde parser in [`super::messages`].
//!
//! A `PRICE` line is a flat object of plain strings, a bool and two arrays of
//! `{"price": "..", "liquidity": N}`; serde's generic machinery (key identifiers, one
//! visitor per level, per-field dispatch) costs about twice the bytes' own scan. This
//! scanner reads that shape in one pass over the bytes and gives up (`None`) on anything
//! it does not fully understand: an escape or control character in a string, a nested
//! value under an unknown key, `null`, a float liquidity, a decimal that does not parse,
//! trailing bytes. The serde parser then decides, so the two never disagree on what a
//! line means, and every error message comes from one place. A property test checks that
//! whenever the scanner answers, it answers what serde does.

use std::borrow::Cow;

use rust_decimal::Decimal;

use super::messages::{OandaPrice, OandaPricingLine, PriceLevel, parse_decimal};

/// The line as an [`OandaPricingLine`], when it has the plain shape; `None`: ask serde.
pub(crate) fn scan(line: &str) -> Option<OandaPricingLine<'_>> {
    let mut s = Scanner {
        b: line.as_bytes(),
        src: line,
        at: 0,
    };
    let mut kind = None;
    let mut instrument = None;
    let mut time = None;
    let mut tradeable = None;
    let mut bids = Vec::new();
    let mut asks = Vec::new();
    let mut closeout_bid = None;
    let mut closeout_ask = None;
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if !s.try_eat(b'}') {
        loop {
            let key = s.string()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            match key {
                "type" => kind = Some(s.string()?),
                "instrument" => instrument = Some(s.string()?),
                "time" => time = Some(s.string()?),
                "tradeable" => tradeable = Some(s.boolean()?),
                "bids" => bids = s.levels()?,
                "asks" => asks = s.levels()?,
                "closeoutBid" => closeout_bid = Some(s.decimal()?),
                "closeoutAsk" => closeout_ask = Some(s.decimal()?),
                _ => s.simple_value()?,
            }
            s.ws();
            if s.try_eat(b',') {
                s.ws();
                continue;
            }
            s.eat(b'}')?;
            break;
        }
    }
    s.ws();
    if s.at != s.b.len() {
        return None;
    }
    match kind? {
        "PRICE" => Some(OandaPricingLine::Price(OandaPrice {
            instrument: Cow::Borrowed(instrument?),
            time: Cow::Borrowed(time.unwrap_or_default()),
            tradeable: tradeable.unwrap_or(true),
            bids,
            asks,
            closeout_bid,
            closeout_ask,
        })),
        "HEARTBEAT" => Some(OandaPricingLine::Heartbeat {
            time: Cow::Borrowed(time.unwrap_or_default()),
        }),
        // Rare: serde's answer is as good and this path stays small.
        _ => None,
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    src: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
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

    fn decimal(&mut self) -> Option<Decimal> {
        parse_decimal(self.string()?).ok()
    }

    /// A JSON integer (`-`? digits, no leading zero unless alone), as a decimal.
    fn integer(&mut self) -> Option<Decimal> {
        let start = self.at;
        self.try_eat(b'-');
        let digits = self.b[self.at..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 || digits > 18 || (digits > 1 && self.b[self.at] == b'0') {
            return None;
        }
        self.at += digits;
        if matches!(self.b.get(self.at), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let v: i64 = self.src.get(start..self.at)?.parse().ok()?;
        Some(Decimal::from(v))
    }

    /// `[{"price": "..", "liquidity": N}, ...]`.
    fn levels(&mut self) -> Option<Vec<PriceLevel>> {
        self.eat(b'[')?;
        let mut out = Vec::with_capacity(4);
        self.ws();
        if self.try_eat(b']') {
            return Some(out);
        }
        loop {
            out.push(self.level()?);
            self.ws();
            if self.try_eat(b',') {
                self.ws();
                continue;
            }
            self.eat(b']')?;
            return Some(out);
        }
    }

    fn level(&mut self) -> Option<PriceLevel> {
        self.eat(b'{')?;
        let (mut price, mut liquidity) = (None, None);
        self.ws();
        if !self.try_eat(b'}') {
            loop {
                let key = self.string()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
                match key {
                    "price" => price = Some(self.decimal()?),
                    "liquidity" => {
                        liquidity = Some(if self.b.get(self.at) == Some(&b'"') {
                            self.decimal()?
                        } else {
                            self.integer()?
                        });
                    }
                    _ => self.simple_value()?,
                }
                self.ws();
                if self.try_eat(b',') {
                    self.ws();
                    continue;
                }
                self.eat(b'}')?;
                break;
            }
        }
        Some(PriceLevel {
            price: price?,
            liquidity: liquidity.unwrap_or_default(),
        })
    }

    /// Skips a plain string, an integer or a bool (anything else: give up).
    fn simple_value(&mut self) -> Option<()> {
        match self.b.get(self.at)? {
            b'"' => self.string().map(drop),
            b't' | b'f' => self.boolean().map(drop),
            _ => self.integer().map(drop),
        }
    }
}
