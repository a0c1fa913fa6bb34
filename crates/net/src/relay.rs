//! One generic event relay: a venue's raw stream events in, gekko events out.
//!
//! Every venue stream has the same pump between its transport and its consumer: read an
//! input (a websocket frame, a chunked line, a snapshot that finished downloading), map it
//! to zero or more output events, forward them in order, and stop cleanly when the
//! consumer goes away or shutdown fires. Written once here, each adapter only supplies the
//! mapping.
//!
//! The relay also watches the consumer: when the receiver is dropped it cancels `stop`, so
//! the transport under it (which shares `stop`) closes its connection instead of
//! streaming into nothing.

use futures_util::{Stream, StreamExt as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Forwards `map(input)` for every input to `out` until the input ends, `out` is closed,
/// or `stop` fires. Cancels `stop` on the way out.
///
/// `map` is synchronous on purpose: it may update the adapter's per-stream state (book
/// sequencers, symbol tables) and spawn follow-up work, but never blocks the pump.
pub async fn relay<S, T, I, F>(input: S, out: mpsc::Sender<T>, stop: CancellationToken, mut map: F)
where
    S: Stream,
    F: FnMut(S::Item) -> I,
    I: IntoIterator<Item = T>,
{
    let mut input = std::pin::pin!(input);
    'outer: loop {
        let item = tokio::select! {
            () = stop.cancelled() => break,
            // Also watch for the receiver being dropped, so a quiet stream stops too.
            () = out.closed() => break,
            item = input.next() => match item { Some(i) => i, None => break },
        };
        for ev in map(item) {
            if out.send(ev).await.is_err() {
                break 'outer;
            }
        }
    }
    stop.cancel();
}

/// A `Stream` over a tokio `mpsc::Receiver`, for combining inputs with
/// `futures_util::stream::select`.
pub fn receiver_stream<T>(mut rx: mpsc::Receiver<T>) -> impl Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn maps_in_order_and_stops_when_the_consumer_leaves() {
        let (in_tx, in_rx) = mpsc::channel(8);
        let (out_tx, mut out_rx) = mpsc::channel(8);
        let stop = CancellationToken::new();
        let task = tokio::spawn(relay(
            receiver_stream(in_rx),
            out_tx,
            stop.clone(),
            |n: u32| (0..n).map(move |i| (n, i)),
        ));
        in_tx.send(2).await.unwrap();
        in_tx.send(0).await.unwrap();
        in_tx.send(1).await.unwrap();
        assert_eq!(out_rx.recv().await, Some((2, 0)));
        assert_eq!(out_rx.recv().await, Some((2, 1)));
        assert_eq!(out_rx.recv().await, Some((1, 0)));
        drop(out_rx);
        tokio::time::timeout(std::time::Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap();
        assert!(stop.is_cancelled(), "the transport is told to stop");
    }

    #[tokio::test]
    async fn stops_on_the_token() {
        let (_in_tx, in_rx) = mpsc::channel::<u32>(8);
        let (out_tx, _out_rx) = mpsc::channel::<u32>(8);
        let stop = CancellationToken::new();
        let task = tokio::spawn(relay(receiver_stream(in_rx), out_tx, stop.clone(), |n| [n]));
        stop.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap();
    }
}
