//! Reachability of every venue endpoint `gekko up` would trade through: DNS, TCP, the TLS
//! handshake, and the clock offset read from the server's `Date` header.
//!
//! Run before anything is bound, so a live venue that cannot be reached shows up in the
//! start-up table (and stops the start when `venues` is a required check) instead of
//! as a gateway that fails later. A venue in paper mode runs against an in-process
//! simulator, so there is nothing to probe. Each step has its own short timeout.

use std::time::{Duration, SystemTime};

use gekko_config::{GekkoConfig, VenueId};

use crate::check::{Row, Status};

/// How long each step waits.
const STEP_TIMEOUT: Duration = Duration::from_secs(3);
/// A clock offset above this is a warning; the gateways measure and compensate theirs,
/// but a clock this far off usually means NTP is not running.
const CLOCK_WARN: Duration = Duration::from_secs(2);

/// The venue's REST base URL when `TRADING_API_ENDPOINTS` does not override it.
fn default_endpoint(venue: VenueId) -> &'static str {
    match venue {
        VenueId::BinanceUs => "https://api.binance.us",
        VenueId::Coinbase => "https://api.coinbase.com",
        VenueId::Oanda => "https://api-fxpractice.oanda.com",
    }
}

fn venue_row(venue: VenueId, step: &str, status: Status, detail: impl Into<String>) -> Row {
    Row {
        check: format!("venue {venue} {step}"),
        family: "venues",
        status,
        detail: detail.into(),
        required: false,
    }
}

/// One or more rows per venue `gekko up` hosts a gateway for.
pub(crate) async fn venues(cfg: &GekkoConfig) -> Vec<Row> {
    let mut rows = Vec::new();
    for venue in crate::up::HOSTED_VENUES.iter().copied() {
        if cfg.paper_mode(venue) {
            rows.push(venue_row(
                venue,
                "endpoint",
                Status::Pass,
                "paper mode: an in-process simulator, nothing to probe",
            ));
            continue;
        }
        let url = cfg.api_endpoint(venue).unwrap_or(default_endpoint(venue));
        rows.extend(probe(venue, url, cfg).await);
    }
    rows
}

/// DNS, TCP, TLS and clock rows for one endpoint; stops at the first step that fails.
/// The TLS step trusts what the gateways trust: the built-in roots plus
/// `TRADING_TLS_CA_FILE` when set ([`GekkoConfig::trading_tls_roots`]).
async fn probe(venue: VenueId, url: &str, cfg: &GekkoConfig) -> Vec<Row> {
    let mut rows = Vec::new();
    // What the rows show: the rows go into the audit trail, and a URL may carry a password.
    let shown = gekko_config::redact_url(url);
    let Some((tls, host, port)) = split(url) else {
        rows.push(venue_row(
            venue,
            "endpoint",
            Status::Fail,
            format!("`{shown}` is not an http(s) URL"),
        ));
        return rows;
    };
    let addrs =
        match tokio::time::timeout(STEP_TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
            .await
        {
            Ok(Ok(a)) => a.collect::<Vec<_>>(),
            Ok(Err(e)) => {
                rows.push(venue_row(
                    venue,
                    "dns",
                    Status::Fail,
                    format!("{host}: {e}"),
                ));
                return rows;
            }
            Err(_) => {
                rows.push(venue_row(
                    venue,
                    "dns",
                    Status::Fail,
                    format!("{host}: no answer within {STEP_TIMEOUT:?}"),
                ));
                return rows;
            }
        };
    let Some(addr) = addrs.first().copied() else {
        rows.push(venue_row(
            venue,
            "dns",
            Status::Fail,
            format!("{host}: no address"),
        ));
        return rows;
    };
    rows.push(venue_row(
        venue,
        "dns",
        Status::Pass,
        format!("{host} → {addr}"),
    ));
    let started = std::time::Instant::now();
    match tokio::time::timeout(STEP_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => rows.push(venue_row(
            venue,
            "tcp",
            Status::Pass,
            format!(
                "connected to {addr} in {} ms",
                started.elapsed().as_millis()
            ),
        )),
        Ok(Err(e)) => {
            rows.push(venue_row(
                venue,
                "tcp",
                Status::Fail,
                format!("{addr}: {e}"),
            ));
            return rows;
        }
        Err(_) => {
            rows.push(venue_row(
                venue,
                "tcp",
                Status::Fail,
                format!("{addr}: no connection within {STEP_TIMEOUT:?}"),
            ));
            return rows;
        }
    }
    let mut builder = reqwest::Client::builder().timeout(STEP_TIMEOUT);
    let certs = cfg.trading_tls_roots().and_then(|pems| {
        pems.iter()
            .map(|pem| {
                reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()
    });
    match certs {
        Ok(certs) => {
            for c in certs.into_iter().flatten() {
                builder = builder.add_root_certificate(c);
            }
        }
        Err(e) => {
            rows.push(venue_row(venue, "tls", Status::Fail, e));
            return rows;
        }
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            rows.push(venue_row(
                venue,
                "tls",
                Status::Fail,
                format!("no HTTP client: {e}"),
            ));
            return rows;
        }
    };
    let resp = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => {
            let step = if tls { "tls" } else { "http" };
            rows.push(venue_row(
                venue,
                step,
                Status::Fail,
                format!("{shown}: {}", gekko_runtime::error_chain(&e.without_url())),
            ));
            return rows;
        }
    };
    rows.push(if tls {
        venue_row(venue, "tls", Status::Pass, format!("handshake ok, {:?}, HTTP {}", resp.version(), resp.status().as_u16()))
    } else {
        venue_row(venue, "tls", Status::Warn, format!("{shown} is plaintext http (HTTP {}): fine for a local simulator, never for a real venue", resp.status().as_u16()))
    });
    let date = resp
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(parse_http_date);
    rows.push(match date {
        Some(server) => {
            let offset_ms = millis(server) - millis(SystemTime::now());
            let abs = Duration::from_millis(offset_ms.unsigned_abs());
            let status = if abs <= CLOCK_WARN {
                Status::Pass
            } else {
                Status::Warn
            };
            venue_row(
                venue,
                "clock",
                status,
                format!("server clock {offset_ms:+} ms from ours (Date header, 1 s resolution)"),
            )
        }
        None => venue_row(
            venue,
            "clock",
            Status::Warn,
            "no Date header: the gateway measures the offset itself at start",
        ),
    });
    rows
}

fn millis(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// `(is https, host, port)` of an http(s) URL.
fn split(url: &str) -> Option<(bool, String, u16)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        (false, url.strip_prefix("http://")?)
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let default = if tls { 443 } else { 80 };
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, tail) = v6.split_once(']')?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default,
        };
        return Some((tls, host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Some((tls, h.to_owned(), p.parse().ok()?)),
        None => Some((tls, authority.to_owned(), default)),
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form servers send today.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let mut it = s.split_whitespace();
    let _weekday = it.next()?;
    let day: u64 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|x| x.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if it.next()? != "GMT" || day == 0 || day > 31 || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = gekko_core::calendar::days_from_civil(year, month, i64::try_from(day).ok()?);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + sec;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_and_port() {
        assert_eq!(
            split("https://api.binance.us"),
            Some((true, "api.binance.us".into(), 443))
        );
        assert_eq!(
            split("http://127.0.0.1:9100/api"),
            Some((false, "127.0.0.1".into(), 9100))
        );
        assert_eq!(
            split("https://[::1]:8443/x"),
            Some((true, "::1".into(), 8443))
        );
        assert_eq!(split("ftp://x"), None);
        assert_eq!(split("http://h:notaport"), None);
    }

    #[test]
    fn http_dates_parse() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(millis(t), 784_111_777_000);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
        assert_eq!(parse_http_date("garbage"), None);
    }
}
