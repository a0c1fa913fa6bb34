//! The final report: what a run of `gekko up` did, written on every shutdown.
//!
//! Built from gekko's own durable records, not from counters that a crash would lose:
//! the order events (`gekko:{orders:<venue>}`) and fills (`gekko:{fills:<venue>}`) of this
//! run, the positions the venues reported before and after the shutdown steps, and what
//! each step could not do. It is written as JSON (for machines) and Markdown (for people)
//! into `CONTROLLER_SETTINGS reports_dir`, also when a venue was down: the report then
//! says which venue and which steps could not be confirmed.
//!
//! Realized P/L is computed per instrument from the fills, first in first out against two
//! lots: the position held when the run started (from the start-up snapshot; its cost is
//! unknown to gekko) and what this run opened (at its average cost). A fill that reduces
//! the position closes the older lot first: closing the start-up lot is reported as
//! `closed_from_start_qty` with no P/L, closing this run's lot realizes
//! `(price − average cost) × qty` (sign by side). A base-asset fee reduces the lot it was
//! charged on, as it reduces the holding. Fees charged in the quote asset are
//! subtracted from it, fees in the base asset are valued at the fill price, and fees in
//! any other asset (BNB, say) are listed by asset and not converted, since the report has
//! no price for them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gekko_core::{Balance, Fill, Position, Side};
use gekko_gateway::orders::OrderEvent;
use gekko_gateway::orders::OrderEventKind;
use rust_decimal::Decimal;
use serde::Serialize;

/// One shutdown step on one venue.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct StepReport {
    /// `stop-entries`, `cancel` or `flatten`.
    pub step: String,
    /// The venue, or `all`.
    pub venue: String,
    /// Whether the venue confirmed everything the step asked for.
    pub done: bool,
    /// What was done, in a few words.
    pub detail: String,
    /// What could not be done, one line each.
    pub not_done: Vec<String>,
}

/// Per instrument, from this run's order events and fills.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub(crate) struct InstrumentReport {
    /// `BASE-QUOTE`.
    pub instrument: String,
    /// Orders submitted (distinct client order ids).
    pub orders: u64,
    /// Fills (distinct venue trade ids).
    pub fills: u64,
    /// Quantity bought and sold.
    pub bought_qty: Decimal,
    pub sold_qty: Decimal,
    /// Quote notional bought and sold (price × qty).
    pub bought_notional: Decimal,
    pub sold_notional: Decimal,
    /// Realized P/L before fees, quote currency.
    pub realized_pnl: Decimal,
    /// Fees valued in the quote currency (quote-asset and base-asset fees).
    pub fees_in_quote: Decimal,
    /// `realized_pnl - fees_in_quote`.
    pub net_pnl: Decimal,
    /// Fees in other assets, not converted.
    pub other_fees: BTreeMap<String, Decimal>,
    /// Quantity closed out of the position held at start-up (no cost known, no P/L).
    pub closed_from_start_qty: Decimal,
    /// The position at start-up, and the one the fills leave (start + bought − sold − base
    /// fees), with the average cost of the part this run opened.
    pub start_qty: Decimal,
    pub end_qty: Decimal,
    pub avg_cost: Option<Decimal>,
}

/// One venue's part of the report.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct VenueReport {
    pub venue: String,
    /// False when the venue could not be reached for the before or after snapshot.
    pub reachable: bool,
    pub instruments: Vec<InstrumentReport>,
    /// Rejections of this run by reason.
    pub rejects: BTreeMap<String, u64>,
    /// At start-up, before the shutdown steps, and after them.
    pub positions_at_start: Vec<PositionLine>,
    pub positions_before: Vec<PositionLine>,
    pub positions_after: Vec<PositionLine>,
    pub balances_before: Vec<BalanceLine>,
    pub balances_after: Vec<BalanceLine>,
    /// Orders still working at the venue after the steps, as gekko knows them.
    pub open_orders_after: u64,
}

/// A position, as a report line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct PositionLine {
    pub instrument: String,
    pub qty: Decimal,
    pub avg_price: Option<Decimal>,
    pub unrealized_pnl: Option<Decimal>,
}

impl From<&Position> for PositionLine {
    fn from(p: &Position) -> Self {
        Self {
            instrument: format!("{}-{}", p.instrument.base, p.instrument.quote),
            qty: p.qty,
            avg_price: p.avg_price,
            unrealized_pnl: p.unrealized_pnl,
        }
    }
}

/// A balance, as a report line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct BalanceLine {
    pub asset: String,
    pub free: Decimal,
    pub locked: Decimal,
}

impl From<&Balance> for BalanceLine {
    fn from(b: &Balance) -> Self {
        Self {
            asset: b.asset.clone(),
            free: b.free,
            locked: b.locked,
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FinalReport {
    pub program: String,
    pub version: String,
    /// `paper` or `live`.
    pub trading_mode: String,
    /// The shutdown mode and who asked for it.
    pub shutdown_mode: String,
    pub origin: String,
    pub started_ms: i64,
    pub stopped_ms: i64,
    pub uptime_s: i64,
    /// True when every step was confirmed by every venue.
    pub complete: bool,
    pub steps: Vec<StepReport>,
    pub venues: Vec<VenueReport>,
    /// Errors met while stopping (a venue down, a bus read that failed).
    pub errors: Vec<String>,
    /// Components that were not ready when the stop began.
    pub alerts: Vec<String>,
}

/// Aggregates one venue's order events and fills of this run into instrument lines and
/// rejects by reason; `start` is each instrument's position (`BASE-QUOTE`) at start-up.
pub(crate) fn summarize(
    events: &[OrderEvent],
    fills: &[Fill],
    start: &BTreeMap<String, Decimal>,
) -> (Vec<InstrumentReport>, BTreeMap<String, u64>) {
    let mut by_inst: BTreeMap<String, InstrumentReport> = BTreeMap::new();
    let mut orders: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut rejects: BTreeMap<String, u64> = BTreeMap::new();
    let mut rejected_ids = std::collections::BTreeSet::new();
    for e in events {
        let inst = &e.order.request.instrument;
        let key = format!("{}-{}", inst.base, inst.quote);
        let id = e.order.request.client_order_id.to_string();
        if e.kind == OrderEventKind::Rejected && rejected_ids.insert(id.clone()) {
            let reason = e
                .order
                .reject_reason
                .clone()
                .unwrap_or_else(|| "unspecified".to_owned());
            *rejects.entry(reason).or_default() += 1;
        }
        orders.entry(key).or_default().insert(id);
    }
    for (key, ids) in &orders {
        by_inst
            .entry(key.clone())
            .or_insert_with(|| InstrumentReport {
                instrument: key.clone(),
                ..InstrumentReport::default()
            })
            .orders = ids.len() as u64;
    }
    // De-duplicated by trade id (the stream is written at least once), in time order.
    let mut seen = std::collections::BTreeSet::new();
    let mut ordered: Vec<&Fill> = fills
        .iter()
        .filter(|f| seen.insert((f.instrument.clone(), f.trade_id.clone())))
        .collect();
    ordered.sort_by_key(|f| f.ts_ms);
    let mut books: BTreeMap<String, Lots> = BTreeMap::new();
    for f in ordered {
        let key = format!("{}-{}", f.instrument.base, f.instrument.quote);
        let line = by_inst
            .entry(key.clone())
            .or_insert_with(|| InstrumentReport {
                instrument: key.clone(),
                ..InstrumentReport::default()
            });
        line.fills += 1;
        let notional = f.price * f.qty;
        match f.side {
            Side::Buy => {
                line.bought_qty += f.qty;
                line.bought_notional += notional;
            }
            Side::Sell => {
                line.sold_qty += f.qty;
                line.sold_notional += notional;
            }
        }
        let signed = match f.side {
            Side::Buy => f.qty,
            Side::Sell => -f.qty,
        };
        let book = books
            .entry(key.clone())
            .or_insert_with(|| Lots::starting(start.get(&key).copied().unwrap_or_default()));
        let (realized, unpriced) = book.apply(signed, f.price);
        line.realized_pnl += realized;
        line.closed_from_start_qty += unpriced;
        if f.fee.is_zero() {
        } else if f.fee_asset.eq_ignore_ascii_case(&f.instrument.quote) {
            line.fees_in_quote += f.fee;
        } else if f.fee_asset.eq_ignore_ascii_case(&f.instrument.base) {
            line.fees_in_quote += f.fee * f.price;
            book.charge_base_fee(f.fee);
        } else {
            *line
                .other_fees
                .entry(f.fee_asset.to_uppercase())
                .or_default() += f.fee;
        }
    }
    for (key, line) in &mut by_inst {
        line.net_pnl = line.realized_pnl - line.fees_in_quote;
        line.start_qty = start.get(key).copied().unwrap_or_default();
        match books.get(key) {
            Some(b) => {
                line.end_qty = b.start + b.run;
                line.avg_cost = (!b.run.is_zero()).then_some(b.avg);
            }
            None => line.end_qty = line.start_qty,
        }
    }
    (by_inst.into_values().collect(), rejects)
}

/// A position in two lots: what was held at start-up (cost unknown) and what this run
/// opened (at `avg`). Both lots have the sign of the position.
#[derive(Debug, Default, Clone, Copy)]
struct Lots {
    start: Decimal,
    run: Decimal,
    avg: Decimal,
}

fn sign(d: Decimal) -> Decimal {
    if d > Decimal::ZERO {
        Decimal::ONE
    } else if d < Decimal::ZERO {
        -Decimal::ONE
    } else {
        Decimal::ZERO
    }
}

impl Lots {
    fn starting(qty: Decimal) -> Self {
        Self {
            start: qty,
            ..Self::default()
        }
    }

    /// Applies a signed fill; returns the P/L it realizes and the quantity it closed out
    /// of the start-up lot.
    fn apply(&mut self, signed_qty: Decimal, price: Decimal) -> (Decimal, Decimal) {
        let total = self.start + self.run;
        if total.is_zero() || sign(total) == sign(signed_qty) {
            let run = self.run + signed_qty;
            self.avg = (self.avg * self.run.abs() + price * signed_qty.abs()) / run.abs();
            self.run = run;
            return (Decimal::ZERO, Decimal::ZERO);
        }
        let mut left = signed_qty.abs();
        // The older lot first.
        let from_start = left.min(self.start.abs());
        self.start -= from_start * sign(self.start);
        left -= from_start;
        let from_run = left.min(self.run.abs());
        let realized = (price - self.avg) * from_run * sign(self.run);
        self.run -= from_run * sign(self.run);
        left -= from_run;
        if self.run.is_zero() {
            self.avg = Decimal::ZERO;
        }
        if !left.is_zero() {
            // Reversed: the remainder opens this run's lot on the other side.
            self.run = left * sign(signed_qty);
            self.avg = price;
        }
        (realized, from_start)
    }

    /// A fee taken in the base asset shrinks the newest lot, as it shrinks the holding.
    fn charge_base_fee(&mut self, fee: Decimal) {
        if self.run > Decimal::ZERO {
            self.run -= fee.min(self.run);
        } else if self.start > Decimal::ZERO {
            self.start -= fee.min(self.start);
        } else {
            // Flat or short: paying base adds to the short (its cost stays the average).
            self.run -= fee;
        }
    }
}

/// The file name stem of a report stopped at `stopped_ms`: sortable and unique per ms.
fn stem(stopped_ms: i64) -> String {
    format!("gekko-report-{stopped_ms}")
}

/// Writes `<dir>/gekko-report-<ms>.json` and `.md`; returns both paths.
///
/// # Errors
/// The directory cannot be created or a file cannot be written.
pub(crate) fn write(report: &FinalReport, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let base = dir.join(stem(report.stopped_ms));
    let json_path = base.with_extension("json");
    let md_path = base.with_extension("md");
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(&json_path, json)?;
    std::fs::write(&md_path, markdown(report))?;
    Ok((json_path, md_path))
}

/// The Markdown form.
pub(crate) fn markdown(r: &FinalReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# gekko final report\n");
    let _ = writeln!(
        out,
        "- version {} ({}), {} mode\n- uptime {} s (started {} ms, stopped {} ms)\n- shutdown `{}` asked by {}\n- **{}**\n",
        r.version,
        r.program,
        r.trading_mode,
        r.uptime_s,
        r.started_ms,
        r.stopped_ms,
        r.shutdown_mode,
        r.origin,
        if r.complete {
            "every step was confirmed by the venues"
        } else {
            "INCOMPLETE: some steps could not be confirmed (see below)"
        }
    );
    let _ = writeln!(
        out,
        "## Shutdown steps\n\n| step | venue | done | detail | not done |\n|---|---|---|---|---|"
    );
    for s in &r.steps {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            s.step,
            s.venue,
            if s.done { "yes" } else { "NO" },
            s.detail,
            if s.not_done.is_empty() {
                "—".to_owned()
            } else {
                s.not_done.join("; ")
            }
        );
    }
    for v in &r.venues {
        let _ = writeln!(
            out,
            "\n## {}{}\n",
            v.venue,
            if v.reachable { "" } else { " (UNREACHABLE)" }
        );
        let _ = writeln!(
            out,
            "| instrument | orders | fills | bought | sold | realized P/L | fees (quote) | net P/L | other fees | start → end qty | closed from start |\n|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for i in &v.instruments {
            let other = if i.other_fees.is_empty() {
                "—".to_owned()
            } else {
                i.other_fees
                    .iter()
                    .map(|(a, f)| format!("{f} {a}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} ({}) | {} ({}) | {} | {} | {} | {} | {} → {} | {} |",
                i.instrument,
                i.orders,
                i.fills,
                i.bought_qty,
                i.bought_notional,
                i.sold_qty,
                i.sold_notional,
                i.realized_pnl,
                i.fees_in_quote,
                i.net_pnl,
                other,
                i.start_qty,
                i.end_qty,
                i.closed_from_start_qty
            );
        }
        let rejects = if v.rejects.is_empty() {
            "none".to_owned()
        } else {
            v.rejects
                .iter()
                .map(|(r, n)| format!("{n} × {r}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let _ = writeln!(
            out,
            "\nRejects: {rejects}. Open orders after the steps: {}.\n",
            v.open_orders_after
        );
        let _ = writeln!(
            out,
            "| position | at start | before the steps | after |\n|---|---|---|---|"
        );
        let mut names: Vec<&str> = v
            .positions_at_start
            .iter()
            .chain(&v.positions_before)
            .chain(&v.positions_after)
            .map(|p| p.instrument.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        for n in names {
            let find = |list: &[PositionLine]| {
                list.iter()
                    .find(|p| p.instrument == n)
                    .map_or_else(|| "0".to_owned(), |p| p.qty.to_string())
            };
            let _ = writeln!(
                out,
                "| {n} | {} | {} | {} |",
                find(&v.positions_at_start),
                find(&v.positions_before),
                find(&v.positions_after)
            );
        }
    }
    let _ = writeln!(out, "\n## Errors and alerts\n");
    if r.errors.is_empty() && r.alerts.is_empty() {
        let _ = writeln!(out, "None.");
    }
    for e in &r.errors {
        let _ = writeln!(out, "- error: {e}");
    }
    for a in &r.alerts {
        let _ = writeln!(out, "- alert: {a}");
    }
    out
}

#[cfg(test)]
mod tests {
    use gekko_core::{ClientOrderId, InstrumentId, VenueId};
    use rust_decimal_macros::dec;

    use super::*;

    fn fill(
        id: &str,
        side: Side,
        price: Decimal,
        qty: Decimal,
        fee: Decimal,
        asset: &str,
        ts: i64,
    ) -> Fill {
        let instrument = InstrumentId::new(VenueId::BinanceUs, "BTC", "USD");
        Fill {
            client_order_id: ClientOrderId::derive("t", &instrument, 1),
            venue_order_id: "1".to_owned(),
            trade_id: id.to_owned(),
            instrument,
            side,
            price,
            qty,
            fee,
            fee_asset: asset.to_owned(),
            ts_ms: ts,
        }
    }

    #[test]
    fn average_cost_realizes_on_reduction_and_reversal() {
        let mut b = Lots::default();
        let z = (dec!(0), dec!(0));
        assert_eq!(b.apply(dec!(1), dec!(100)), z);
        assert_eq!(b.apply(dec!(1), dec!(200)), z);
        assert_eq!(b.avg, dec!(150));
        // Sell 1.5 at 170: realizes 1.5 × 20.
        assert_eq!(b.apply(dec!(-1.5), dec!(170)), (dec!(30), dec!(0)));
        assert_eq!((b.run, b.avg), (dec!(0.5), dec!(150)));
        // Sell 1 at 140: closes 0.5 (−5), opens a 0.5 short at 140.
        assert_eq!(b.apply(dec!(-1), dec!(140)), (dec!(-5), dec!(0)));
        assert_eq!((b.run, b.avg), (dec!(-0.5), dec!(140)));
        // Buy back at 130: the short gains 5.
        assert_eq!(b.apply(dec!(0.5), dec!(130)), (dec!(5), dec!(0)));
        assert!(b.run.is_zero());
    }

    #[test]
    fn the_start_up_holding_closes_first_and_has_no_pnl() {
        // Held 20 at start, bought 0.5 at 3000, sold 20.5 at 3010.
        let mut b = Lots::starting(dec!(20));
        assert_eq!(b.apply(dec!(0.5), dec!(3000)), (dec!(0), dec!(0)));
        assert_eq!(b.apply(dec!(-20.5), dec!(3010)), (dec!(5), dec!(20)));
        assert_eq!((b.start, b.run), (dec!(0), dec!(0)));
    }

    #[test]
    fn fills_are_deduplicated_and_fees_valued() {
        let fills = [
            fill("a", Side::Buy, dec!(100), dec!(2), dec!(0.002), "BTC", 1),
            fill("a", Side::Buy, dec!(100), dec!(2), dec!(0.002), "BTC", 1),
            fill("b", Side::Sell, dec!(110), dec!(1), dec!(0.11), "USD", 2),
            fill("c", Side::Sell, dec!(90), dec!(1), dec!(0.01), "BNB", 3),
        ];
        let (lines, rejects) = summarize(&[], &fills, &BTreeMap::new());
        assert!(rejects.is_empty());
        let l = &lines[0];
        assert_eq!((l.instrument.as_str(), l.fills), ("BTC-USD", 3));
        assert_eq!((l.bought_qty, l.sold_qty), (dec!(2), dec!(2)));
        assert_eq!((l.bought_notional, l.sold_notional), (dec!(200), dec!(200)));
        // 1.998 held after the fee: +10 on the first unit, −9.98 on the other 0.998.
        assert_eq!(l.realized_pnl, dec!(0.02));
        assert_eq!(l.fees_in_quote, dec!(0.2) + dec!(0.11));
        assert_eq!(l.net_pnl, dec!(-0.29));
        assert_eq!(l.other_fees.get("BNB"), Some(&dec!(0.01)));
        // 2 bought, 0.002 of them paid as fee, 2 sold: 0.002 short.
        assert_eq!((l.start_qty, l.end_qty), (dec!(0), dec!(-0.002)));
    }
}
