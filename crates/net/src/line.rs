//! A chunked line stream: an HTTP GET whose response never ends, one JSON object per line.
//!
//! OANDA streams prices and transactions this way (`Transfer-Encoding: chunked`,
//! `\n`-delimited JSON, a heartbeat line every few seconds). It fails exactly like a
//! websocket (the server drops us, the network stalls with the socket still open), so it
//! runs under the same supervisor ([`crate::stream`]): reconnect with the one backoff,
//! silence watchdog, maximum age, reconnect on demand, and the same [`StreamEvent`]s, so a
//! venue relay reads both transports alike.
//!
//! A line is a [`StreamEvent::Text`] unless [`StreamHooks::on_text`] says otherwise (OANDA's
//! `{"type":"HEARTBEAT"}` lines are best reported as [`FrameVerdict::Heartbeat`]). Any bytes
//! arriving count as liveness for the watchdog, even half a line. Blank lines are
//! skipped; `\r\n` endings are accepted; a line over [`MAX_LINE_BYTES`] ends the session
//! rather than growing the buffer without bound; a line that is not UTF-8 is dropped with a
//! log line.
//!
//! The framing (chunks to lines) is [`LineBuffer`], public so that a venue can test its
//! line parsers against exactly the lines the transport would deliver for any chunk split.
//!
//! The `reqwest::Client` must have **no total timeout** (it would cut the stream); the
//! supervisor's `connect_timeout` bounds the wait for the response headers instead.
//!
//! [`FrameVerdict::Heartbeat`]: crate::stream::FrameVerdict::Heartbeat

use std::future::Future;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::http::{NetError, truncate};
use crate::stream::{
    Interrupt, SessionCtx, SessionEnd, StreamConfig, StreamEvent, StreamHooks, Transport, Watchdog,
    or_cancel, supervise,
};

/// The longest line kept, in bytes (an OANDA price line is well under 1 KiB).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Spawns [`run_line_stream`] on a new task and returns its event receiver and handle.
///
/// The task ends when `cancel` fires or the receiver is dropped; track the handle.
pub fn spawn_line_stream<R, RF, H>(
    config: StreamConfig,
    request: R,
    hooks: H,
    cancel: CancellationToken,
) -> (mpsc::Receiver<StreamEvent>, tokio::task::JoinHandle<()>)
where
    R: FnMut() -> RF + Send + 'static,
    RF: Future<Output = Result<reqwest::RequestBuilder, String>> + Send + 'static,
    H: StreamHooks + 'static,
{
    let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
    let handle = tokio::spawn(run_line_stream(config, request, hooks, tx, cancel));
    (rx, handle)
}

/// Runs the reconnect loop over a chunked line stream until `cancel` fires or `tx`'s
/// receiver is dropped. See the module docs.
///
/// `request` is called before every connect and returns the request to send, auth included
/// (e.g. built from an [`OutgoingRequest`](crate::auth::OutgoingRequest) that a
/// [`BearerToken`](crate::auth::BearerToken) authorised); an `Err` counts as a failed
/// attempt.
pub async fn run_line_stream<R, RF, H>(
    config: StreamConfig,
    request: R,
    hooks: H,
    tx: mpsc::Sender<StreamEvent>,
    cancel: CancellationToken,
) where
    R: FnMut() -> RF,
    RF: Future<Output = Result<reqwest::RequestBuilder, String>>,
    H: StreamHooks,
{
    supervise(config, LineTransport { request, hooks }, tx, cancel).await;
}

/// Joins the chunks of a line stream into lines: the framing half of the transport, kept
/// apart from the socket so a venue's tests (and fuzzers) can feed it arbitrary chunk
/// splits and get exactly the lines the live stream would deliver.
///
/// A line ends at `\n`; a `\r` before it is dropped; lines of only whitespace are
/// skipped. Bytes after the last `\n` wait for the next chunk. Each byte is scanned for a
/// newline once, however many chunks a long line spans.
#[derive(Debug, Default, Clone)]
pub struct LineBuffer {
    buf: Vec<u8>,
    /// Start of the first line not yet returned.
    start: usize,
    /// Everything before this offset has been searched for `\n` already.
    scanned: usize,
}

impl LineBuffer {
    /// An empty buffer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one chunk (any bytes, any split).
    pub fn push(&mut self, chunk: &[u8]) {
        if self.start > 0 {
            // Drop the lines already handed out before growing the buffer.
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete, non-blank line without its line ending; `None` until another
    /// chunk completes one.
    ///
    /// # Errors
    /// `Some(Err(len))` for a line of `len` bytes that is not UTF-8 (it is consumed).
    pub fn next_line(&mut self) -> Option<Result<&str, usize>> {
        let (from, to) = loop {
            let pos = self.buf[self.scanned..].iter().position(|&b| b == b'\n');
            let Some(pos) = pos else {
                self.scanned = self.buf.len();
                return None;
            };
            let end = self.scanned + pos;
            let from = self.start;
            self.start = end + 1;
            self.scanned = end + 1;
            let to = if end > from && self.buf[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            if !self.buf[from..to].iter().all(u8::is_ascii_whitespace) {
                break (from, to);
            }
        };
        let line = &self.buf[from..to];
        Some(std::str::from_utf8(line).map_err(|_| line.len()))
    }

    /// Bytes held that do not yet end in a newline (a line still arriving).
    #[must_use]
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

struct LineTransport<R, H> {
    request: R,
    hooks: H,
}

impl<R, RF, H> Transport for LineTransport<R, H>
where
    R: FnMut() -> RF,
    RF: Future<Output = Result<reqwest::RequestBuilder, String>>,
    H: StreamHooks,
{
    async fn session(&mut self, ctx: &mut SessionCtx<'_>) -> SessionEnd {
        let request = match or_cancel(ctx.cancel, (self.request)()).await {
            None => return SessionEnd::Stop,
            Some(Err(e)) => return SessionEnd::Closed(format!("no request: {e}")),
            Some(Ok(r)) => r,
        };
        let timeout = ctx.config.connect_timeout;
        let mut resp =
            match or_cancel(ctx.cancel, tokio::time::timeout(timeout, request.send())).await {
                None => return SessionEnd::Stop,
                Some(Err(_)) => {
                    return SessionEnd::Closed(format!("connect timed out after {timeout:?}"));
                }
                Some(Ok(Err(e))) => {
                    return SessionEnd::Closed(format!(
                        "connect failed: {}",
                        NetError::from_reqwest(e)
                    ));
                }
                Some(Ok(Ok(r))) => r,
            };
        let status = resp.status();
        if !status.is_success() {
            // The body says why (bad token, unknown instrument); read a little of it, briefly.
            let body = tokio::time::timeout(timeout, resp.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return SessionEnd::Closed(format!(
                "HTTP {}: {}",
                status.as_u16(),
                truncate(&body, 256)
            ));
        }
        self.hooks.on_connect();
        if !ctx.connected().await {
            return SessionEnd::Stop;
        }

        let mut watchdog = Watchdog::new(ctx.config);
        let mut lines = LineBuffer::new();
        loop {
            let chunk = tokio::select! {
                biased;
                i = watchdog.wait(ctx.last_frame, ctx.cancel) => {
                    return match i {
                        Interrupt::Cancelled => SessionEnd::Stop,
                        Interrupt::Reconnect => SessionEnd::Closed("reconnect requested".to_owned()),
                        Interrupt::Stale => SessionEnd::Stale,
                        Interrupt::MaxAge => SessionEnd::Closed("maximum connection age reached".to_owned()),
                    };
                }
                c = resp.chunk() => c,
            };
            let bytes = match chunk {
                Ok(Some(b)) => b,
                Ok(None) => return SessionEnd::Closed("stream ended".to_owned()),
                Err(e) => {
                    return SessionEnd::Closed(format!(
                        "read failed: {}",
                        NetError::from_reqwest(e)
                    ));
                }
            };
            ctx.frame_seen();
            lines.push(&bytes);
            while let Some(line) = lines.next_line() {
                match line {
                    Ok(text) => {
                        let text = text.to_owned();
                        if let Err(end) = ctx.text(&mut self.hooks, text).await {
                            return end;
                        }
                    }
                    Err(len) => {
                        tracing::debug!(venue = %ctx.config.venue, stream = %ctx.config.stream, len, "ignoring non-UTF-8 line");
                    }
                }
            }
            if lines.pending() > MAX_LINE_BYTES {
                return SessionEnd::Closed(format!("line longer than {MAX_LINE_BYTES} bytes"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(b: &mut LineBuffer) -> Vec<Result<String, usize>> {
        let mut out = Vec::new();
        while let Some(l) = b.next_line() {
            out.push(l.map(str::to_owned));
        }
        out
    }

    #[test]
    fn lines_split_anywhere_come_out_whole() {
        let input = b"{\"a\":1}\r\n\n  \n{\"b\":\"\xc3\xa9\"}\n\xff\xfe\n{\"c\":3}";
        let whole = {
            let mut b = LineBuffer::new();
            b.push(input);
            drain(&mut b)
        };
        assert_eq!(
            whole,
            [
                Ok("{\"a\":1}".to_owned()),
                Ok("{\"b\":\"\u{e9}\"}".to_owned()),
                Err(2)
            ]
        );
        for split in 0..input.len() {
            for split2 in split..input.len() {
                let mut b = LineBuffer::new();
                let mut got = Vec::new();
                for part in [&input[..split], &input[split..split2], &input[split2..]] {
                    b.push(part);
                    got.extend(drain(&mut b));
                }
                assert_eq!(got, whole, "split at {split}, {split2}");
                assert_eq!(b.pending(), "{\"c\":3}".len());
            }
        }
        let mut b = LineBuffer::new();
        b.push(input);
        drain(&mut b);
        b.push(b"\n");
        assert_eq!(drain(&mut b), [Ok("{\"c\":3}".to_owned())]);
        assert_eq!(b.pending(), 0);
    }
}
