//! A server-sent events parser that works over arbitrary byte chunking.
//!
//! HTTP gives a streaming body in whatever pieces the network delivers: a chunk may end in
//! the middle of a line, of a UTF-8 character, or between the `\r` and `\n` of a line end.
//! The parser therefore buffers bytes and only decodes complete lines. It follows the
//! WHATWG event-stream rules gekko needs: lines end in `\n`, `\r\n` or `\r`; a blank line
//! dispatches the event; `data:` lines accumulate (joined with `\n`); `event:` names the
//! event; a line starting with `:` is a comment (OpenRouter's `: OPENROUTER PROCESSING`
//! keep-alives), reported as [`SseItem::Comment`] so callers can count keep-alives and
//! otherwise skip them; other fields (`id:`, `retry:`) are ignored.

/// One thing the parser found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A comment line (the text after the `:`), a keep-alive.
    Comment(String),
    /// A dispatched event: its `event:` name (`message` when none) and its data.
    Event {
        /// The `event:` field, or `message`.
        name: String,
        /// The `data:` lines joined with `\n`.
        data: String,
    },
}

/// Incremental parser; feed it chunks with [`SseParser::push`].
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of an incomplete line.
    partial: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` at the start of the next one belongs to it.
    after_cr: bool,
    data: Option<String>,
    name: Option<String>,
}

impl SseParser {
    /// A parser at the start of a stream.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk and returns every item it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseItem> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(i) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.partial.extend_from_slice(&rest[..i]);
            let cr = rest[i] == b'\r';
            rest = &rest[i + 1..];
            if cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            let line = std::mem::take(&mut self.partial);
            self.line(&String::from_utf8_lossy(&line), &mut out);
        }
        self.partial.extend_from_slice(rest);
        out
    }

    /// Ends the stream: an event whose blank line never came is dropped, as the standard
    /// says; the bytes of an unterminated last line are returned so a caller can tell a
    /// truncated stream from a clean end.
    #[must_use]
    pub fn finish(&mut self) -> Option<String> {
        let left = std::mem::take(&mut self.partial);
        self.data = None;
        self.name = None;
        (!left.is_empty()).then(|| String::from_utf8_lossy(&left).into_owned())
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseItem>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                let name = self.name.take().unwrap_or_else(|| "message".to_owned());
                out.push(SseItem::Event { name, data });
            }
            self.name = None;
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            out.push(SseItem::Comment(comment.trim_start().to_owned()));
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.name = Some(value.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = ": OPENROUTER PROCESSING\n\n\
        data: {\"a\":1}\n\n\
        : OPENROUTER PROCESSING\r\n\
        data: {\"b\":\r\ndata: 2}\r\n\r\n\
        event: error\ndata: {\"e\":\"é\"}\n\n\
        data: [DONE]\n\n";

    fn expected() -> Vec<SseItem> {
        vec![
            SseItem::Comment("OPENROUTER PROCESSING".into()),
            SseItem::Event {
                name: "message".into(),
                data: "{\"a\":1}".into(),
            },
            SseItem::Comment("OPENROUTER PROCESSING".into()),
            SseItem::Event {
                name: "message".into(),
                data: "{\"b\":\n2}".into(),
            },
            SseItem::Event {
                name: "error".into(),
                data: "{\"e\":\"é\"}".into(),
            },
            SseItem::Event {
                name: "message".into(),
                data: "[DONE]".into(),
            },
        ]
    }

    #[test]
    fn whole_stream_in_one_chunk() {
        let mut p = SseParser::new();
        assert_eq!(p.push(STREAM.as_bytes()), expected());
        assert_eq!(p.finish(), None);
    }

    #[test]
    fn every_split_point_and_byte_at_a_time_give_the_same_items() {
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let mut p = SseParser::new();
            let mut got = p.push(&bytes[..cut]);
            got.extend(p.push(&bytes[cut..]));
            assert_eq!(got, expected(), "split at {cut}");
        }
        let mut p = SseParser::new();
        let got: Vec<SseItem> = bytes.iter().flat_map(|b| p.push(&[*b])).collect();
        assert_eq!(got, expected());
    }

    #[test]
    fn lone_cr_ends_a_line_and_a_truncated_tail_is_reported() {
        let mut p = SseParser::new();
        let got = p.push(b"data: x\r\rdata: y");
        assert_eq!(
            got,
            vec![SseItem::Event {
                name: "message".into(),
                data: "x".into()
            }]
        );
        assert_eq!(p.finish(), Some("data: y".to_owned()));
    }

    #[test]
    fn blank_lines_without_data_dispatch_nothing_and_garbage_is_ignored() {
        let mut p = SseParser::new();
        assert!(p.push(b"\n\n\nid: 7\nretry: 10\nnonsense\n\n").is_empty());
    }
}
