//! A reader of the Prometheus text exposition format, enough for the gauges and counters
//! healthd derives alerts from (`/metrics` of every gekko service).

use std::collections::BTreeMap;

/// One sample: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The labels as `k=v,k=v` (sorted), for subjects and keys.
    #[must_use]
    pub fn label_text(&self) -> String {
        self.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Reads every sample whose name is in `wanted`; comments, other metrics and lines it
/// cannot read are skipped (a scrape is best effort: one odd line must not hide the rest).
#[must_use]
pub fn parse(text: &str, wanted: &[&str]) -> Vec<Sample> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(parse_line)
        .filter(|s| wanted.contains(&s.name.as_str()))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(mut s) = rest.strip_prefix('{') {
        loop {
            s = s.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
            if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = s.find('=')?;
            let key = s[..eq].trim().to_owned();
            s = s[eq + 1..].trim_start().strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = s.char_indices();
            let close = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => {
                        let (_, e) = chars.next()?;
                        value.push(if e == 'n' { '\n' } else { e });
                    }
                    '"' => break i,
                    other => value.push(other),
                }
            };
            labels.insert(key, value);
            s = &s[close + 1..];
        }
    }
    let value_text = rest.split_whitespace().next()?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse::<f64>().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_labels_escapes_and_skips_the_rest() {
        let text = "# HELP gekko_venue_ws_connected 1 while connected\n\
                    # TYPE gekko_venue_ws_connected gauge\n\
                    gekko_venue_ws_connected{venue=\"binanceus\",stream=\"market\"} 0\n\
                    gekko_venue_ws_connected{stream=\"user\",venue=\"binanceus\"} 1\n\
                    gekko_other 3\n\
                    gekko_gateway_clock_offset_ms{venue=\"a\\\"b\"} -1500.5 1700000000\n\
                    garbage{ 1\n";
        let got = parse(
            text,
            &["gekko_venue_ws_connected", "gekko_gateway_clock_offset_ms"],
        );
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].labels["venue"], "binanceus");
        assert_eq!(got[0].labels["stream"], "market");
        assert!(got[0].value.abs() < f64::EPSILON);
        assert_eq!(got[1].label_text(), "stream=user,venue=binanceus");
        assert_eq!(got[2].labels["venue"], "a\"b");
        assert!((got[2].value + 1500.5).abs() < 1e-9);
    }
}
