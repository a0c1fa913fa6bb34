//! Property tests of the stream parsers behind the line framing the transport uses
//! (`gekko_net::LineBuffer`): arbitrary bytes in arbitrary chunks never panic, and the
//! fixture lines split anywhere, into any number of chunks, parse to exactly the values
//! they parse to whole.

use gekko_net::LineBuffer;
use gekko_oanda::stream::{parse_pricing_line, parse_transaction_line};
use proptest::prelude::*;

fn fixture(name: &str) -> String {
    let path = format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Both streams' fixture lines, newline-terminated, as one byte stream.
fn all_lines() -> Vec<u8> {
    let mut s = fixture("stream_pricing.jsonl");
    s.push_str(&fixture("stream_transactions.jsonl"));
    s.into_bytes()
}

/// What one line parses to, as comparable text (`Debug` of the typed value or error).
fn parsed(line: &str) -> (String, String) {
    (
        format!("{:?}", parse_pricing_line(line)),
        format!("{:?}", parse_transaction_line(line)),
    )
}

/// Feeds `bytes` to a line buffer cut at `cuts` (offsets, any order, any repeats) and
/// parses every line it yields.
fn feed(bytes: &[u8], cuts: &[usize]) -> Vec<(String, String)> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    let mut buf = LineBuffer::new();
    let mut out = Vec::new();
    for w in at.windows(2) {
        buf.push(&bytes[w[0]..w[1]]);
        while let Some(line) = buf.next_line() {
            match line {
                Ok(text) => out.push(parsed(text)),
                Err(len) => out.push((format!("not UTF-8 ({len})"), String::new())),
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Valid lines split anywhere parse to the same values as whole.
    #[test]
    fn valid_lines_split_anywhere_parse_the_same(cuts in proptest::collection::vec(any::<usize>(), 0..40)) {
        let bytes = all_lines();
        let whole = feed(&bytes, &[]);
        prop_assert_eq!(whole.len(), bytes.iter().filter(|&&b| b == b'\n').count());
        prop_assert!(whole.iter().all(|(p, t)| p.starts_with("Ok(") || t.starts_with("Ok(")));
        prop_assert_eq!(feed(&bytes, &cuts), whole);
    }

    /// Arbitrary bytes in arbitrary chunks: no panic, whatever comes out.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        feed(&bytes, &cuts);
    }

    /// Valid lines with bytes changed, cut out or newlines inserted: no panic.
    #[test]
    fn damaged_lines_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let mut bytes = all_lines();
        for (at, b, op) in edits {
            let at = at % bytes.len();
            match op {
                0 => bytes[at] = b,
                1 => { bytes.remove(at); }
                _ => bytes.insert(at, b'\n'),
            }
            if bytes.is_empty() {
                break;
            }
        }
        feed(&bytes, &cuts);
    }
}
