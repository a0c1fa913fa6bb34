//! A websocket client that reconnects forever, answers pings and detects silent streams.
//!
//! The most common complaint about trading bots is a stream that stops and never comes
//! back (hummingbot#7404, #8250, btoandav20#23, ccxt#7858), or one that stays "connected"
//! while no data flows (Lean#4045). The reconnect loop, backoff and watchdog that prevent
//! both live in [`crate::stream`], shared with the chunked line stream; this module is the
//! websocket transport under it:
//!
//! * it asks for a **fresh URL on every connect** (a closure), because some streams embed a
//!   short-lived credential (Binance.US user stream `listenKey`);
//! * it sends the subscribe messages from [`StreamHooks::subscribe_messages`] after every
//!   connect, built fresh each time (a Coinbase JWT goes in each message);
//! * every inbound text frame passes [`StreamHooks::on_text`], which may drop it or force a
//!   reconnect (a per-connection sequence gap);
//! * it answers pings (tungstenite queues the pong; this loop flushes it at once);
//! * `wss://` uses [`StreamConfig::tls`] when set (extra trusted roots, see [`crate::tls`]);
//! * it counts `gekko_venue_ws_reconnects_total{venue,stream}` and keeps
//!   `gekko_venue_stream_staleness_seconds{venue,stream}` current (through the supervisor).
//!
//! Concurrency: one task owns the socket and does everything (read, pong, subscribe,
//! timers) in one `select!` loop, so there is no split sink/stream and no lock.

use std::future::Future;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::stream::{
    Interrupt, SessionCtx, SessionEnd, StaticSubscriptions, StreamConfig, StreamEvent, StreamHooks,
    Transport, Watchdog, or_cancel, supervise,
};
pub use crate::stream::{METRIC_CONNECTED, METRIC_RECONNECTS, METRIC_STALENESS};

/// Settings for one websocket stream (the shared [`StreamConfig`]).
pub type WsConfig = StreamConfig;

/// What the websocket client reports (the shared [`StreamEvent`]).
pub type WsEvent = StreamEvent;

/// Spawns [`run_ws`] on a new task and returns its event receiver and join handle.
///
/// The task ends when `cancel` fires or the receiver is dropped; track the handle.
pub fn spawn_ws<U, UF>(
    config: WsConfig,
    url: U,
    subscriptions: Vec<String>,
    cancel: CancellationToken,
) -> (mpsc::Receiver<WsEvent>, tokio::task::JoinHandle<()>)
where
    U: FnMut() -> UF + Send + 'static,
    UF: Future<Output = Result<String, String>> + Send + 'static,
{
    spawn_ws_with_hooks(config, url, StaticSubscriptions(subscriptions), cancel)
}

/// Spawns [`run_ws_with_hooks`] on a new task and returns its event receiver and handle.
pub fn spawn_ws_with_hooks<U, UF, H>(
    config: WsConfig,
    url: U,
    hooks: H,
    cancel: CancellationToken,
) -> (mpsc::Receiver<WsEvent>, tokio::task::JoinHandle<()>)
where
    U: FnMut() -> UF + Send + 'static,
    UF: Future<Output = Result<String, String>> + Send + 'static,
    H: StreamHooks + 'static,
{
    let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
    let handle = tokio::spawn(run_ws_with_hooks(config, url, hooks, tx, cancel));
    (rx, handle)
}

/// Runs the reconnect loop with the same `subscriptions` on every connect, sending events
/// to `tx`, until `cancel` fires or `tx`'s receiver is dropped. See the module docs.
///
/// `url` is called before every connect; an `Err` counts as a failed attempt.
pub async fn run_ws<U, UF>(
    config: WsConfig,
    url: U,
    subscriptions: Vec<String>,
    tx: mpsc::Sender<WsEvent>,
    cancel: CancellationToken,
) where
    U: FnMut() -> UF,
    UF: Future<Output = Result<String, String>>,
{
    run_ws_with_hooks(config, url, StaticSubscriptions(subscriptions), tx, cancel).await;
}

/// Runs the reconnect loop with per-session `hooks` (fresh subscribe messages on every
/// connect, a look at every text frame). Otherwise as [`run_ws`].
pub async fn run_ws_with_hooks<U, UF, H>(
    config: WsConfig,
    url: U,
    hooks: H,
    tx: mpsc::Sender<WsEvent>,
    cancel: CancellationToken,
) where
    U: FnMut() -> UF,
    UF: Future<Output = Result<String, String>>,
    H: StreamHooks,
{
    supervise(config, WsTransport { url, hooks }, tx, cancel).await;
}

/// The websocket [`Transport`]: a URL closure and the venue's hooks.
struct WsTransport<U, H> {
    url: U,
    hooks: H,
}

impl<U, UF, H> Transport for WsTransport<U, H>
where
    U: FnMut() -> UF,
    UF: Future<Output = Result<String, String>>,
    H: StreamHooks,
{
    /// One connection: connect, subscribe, pump frames until it ends.
    async fn session(&mut self, ctx: &mut SessionCtx<'_>) -> SessionEnd {
        let url = match or_cancel(ctx.cancel, (self.url)()).await {
            None => return SessionEnd::Stop,
            Some(Err(e)) => return SessionEnd::Closed(format!("no url: {e}")),
            Some(Ok(u)) => u,
        };
        let timeout = ctx.config.connect_timeout;
        // Boxed: the handshake future is large, and it lives only while connecting.
        // `tls` only matters for `wss://`; a `ws://` URL ignores the connector.
        let connector = ctx
            .config
            .tls
            .clone()
            .map(tokio_tungstenite::Connector::Rustls);
        let connect = Box::pin(tokio::time::timeout(
            timeout,
            tokio_tungstenite::connect_async_tls_with_config(url, None, false, connector),
        ));
        let mut ws = match or_cancel(ctx.cancel, connect).await {
            None => return SessionEnd::Stop,
            Some(Err(_)) => {
                return SessionEnd::Closed(format!("connect timed out after {timeout:?}"));
            }
            Some(Ok(Err(e))) => return SessionEnd::Closed(format!("connect failed: {e}")),
            Some(Ok(Ok((ws, _response)))) => ws,
        };
        let subscriptions = match self.hooks.subscribe_messages() {
            Ok(s) => s,
            Err(e) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                return SessionEnd::Closed(format!("no subscribe messages: {e}"));
            }
        };
        self.hooks.on_connect();
        for s in subscriptions {
            if let Err(e) = ws.send(Message::text(s)).await {
                return SessionEnd::Closed(format!("subscribe failed: {e}"));
            }
        }
        if !ctx.connected().await {
            return SessionEnd::Stop;
        }

        let mut watchdog = Watchdog::new(ctx.config);
        loop {
            let frame = tokio::select! {
                biased;
                i = watchdog.wait(ctx.last_frame, ctx.cancel) => {
                    let (end, polite) = match i {
                        Interrupt::Cancelled => (SessionEnd::Stop, true),
                        Interrupt::Reconnect => (SessionEnd::Closed("reconnect requested".to_owned()), true),
                        Interrupt::Stale => (SessionEnd::Stale, false),
                        Interrupt::MaxAge => (SessionEnd::Closed("maximum connection age reached".to_owned()), true),
                    };
                    if polite {
                        // Best effort, bounded so shutdown is never held up.
                        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    }
                    return end;
                }
                f = ws.next() => f,
            };
            let msg = match frame {
                None => return SessionEnd::Closed("stream ended".to_owned()),
                Some(Err(e)) => return SessionEnd::Closed(format!("read failed: {e}")),
                Some(Ok(m)) => m,
            };
            ctx.frame_seen();
            let text = match msg {
                Message::Text(t) => Some(t.as_str().to_owned()),
                Message::Binary(b) => {
                    if let Ok(t) = String::from_utf8(b.to_vec()) {
                        Some(t)
                    } else {
                        tracing::debug!(venue = %ctx.config.venue, stream = %ctx.config.stream, len = b.len(), "ignoring non-UTF-8 binary frame");
                        None
                    }
                }
                Message::Ping(_) => {
                    // tungstenite queued the pong; flush it now rather than on the next read.
                    if let Err(e) = ws.flush().await {
                        return SessionEnd::Closed(format!("pong failed: {e}"));
                    }
                    if let Err(end) = ctx.deliver(WsEvent::Heartbeat).await {
                        return end;
                    }
                    None
                }
                Message::Pong(_) => {
                    if let Err(end) = ctx.deliver(WsEvent::Heartbeat).await {
                        return end;
                    }
                    None
                }
                Message::Close(frame) => {
                    let why = frame.map_or_else(
                        || "no close frame".to_owned(),
                        |f| format!("code {} {}", u16::from(f.code), f.reason),
                    );
                    return SessionEnd::Closed(format!("closed by server: {why}"));
                }
                Message::Frame(_) => None,
            };
            if let Some(text) = text
                && let Err(end) = ctx.text(&mut self.hooks, text).await
            {
                if matches!(end, SessionEnd::Closed(_)) {
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                }
                return end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use std::sync::Arc;

    use tokio::net::TcpListener;
    use tokio::sync::Notify;
    use tokio::time::Instant;

    use super::*;
    use crate::retry::BackoffConfig;
    use crate::stream::{SequenceGuard, SubscribeWith};

    /// How the test server treats each accepted connection.
    #[derive(Clone, Copy)]
    enum Behaviour {
        /// Echo a greeting per subscription, then a ping, then hold the connection open.
        GreetThenPing,
        /// Send one text frame and close.
        SendOneAndClose,
        /// Accept and then say nothing at all.
        Silent,
        /// Send `seq=0`, `seq=1`, `seq=3` (a gap) and hold the connection open.
        Gap,
    }

    struct Server {
        addr: std::net::SocketAddr,
        accepted: Arc<AtomicUsize>,
        pongs: Arc<AtomicUsize>,
        subs: Arc<std::sync::Mutex<Vec<String>>>,
        task: tokio::task::JoinHandle<()>,
    }

    async fn server(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let pongs = Arc::new(AtomicUsize::new(0));
        let subs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (a, p, s) = (accepted.clone(), pongs.clone(), subs.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let (p, s) = (p.clone(), s.clone());
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(sock).await else {
                        return;
                    };
                    match behaviour {
                        Behaviour::SendOneAndClose => {
                            let _ = ws.send(Message::text("hello")).await;
                            let _ = ws.close(None).await;
                        }
                        Behaviour::Silent => while ws.next().await.is_some() {},
                        Behaviour::Gap => {
                            for n in [0, 1, 3] {
                                let _ = ws.send(Message::text(format!("seq={n}"))).await;
                            }
                            while ws.next().await.is_some() {}
                        }
                        Behaviour::GreetThenPing => {
                            let _ = ws.send(Message::Ping(vec![1, 2, 3].into())).await;
                            while let Some(Ok(m)) = ws.next().await {
                                match m {
                                    Message::Text(t) => {
                                        s.lock().unwrap().push(t.as_str().to_owned());
                                        let _ = ws.send(Message::text(format!("ack {t}"))).await;
                                    }
                                    Message::Pong(d) if d.as_ref() == [1, 2, 3] => {
                                        p.fetch_add(1, Ordering::SeqCst);
                                    }
                                    _ => {}
                                }
                            }
                        }
                    }
                });
            }
        });
        Server {
            addr,
            accepted,
            pongs,
            subs,
            task,
        }
    }

    fn config() -> WsConfig {
        let mut c = WsConfig::new("test", "market");
        c.stale_after = Duration::from_millis(400);
        c.backoff = BackoffConfig::new(Duration::from_millis(20), Duration::from_millis(50));
        c.connect_timeout = Duration::from_secs(2);
        c
    }

    async fn next(rx: &mut mpsc::Receiver<WsEvent>) -> WsEvent {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("event within 5 s")
            .expect("channel open")
    }

    #[tokio::test]
    async fn subscribes_answers_pings_and_delivers_text() {
        let srv = server(Behaviour::GreetThenPing).await;
        let cancel = CancellationToken::new();
        let url = format!("ws://{}/stream", srv.addr);
        let (mut rx, handle) = spawn_ws(
            config(),
            move || {
                let url = url.clone();
                async move { Ok(url) }
            },
            vec!["sub-1".to_owned(), "sub-2".to_owned()],
            cancel.clone(),
        );
        assert_eq!(next(&mut rx).await, WsEvent::Connected);
        let mut texts = Vec::new();
        let mut heartbeat = false;
        while texts.len() < 2 || !heartbeat {
            match next(&mut rx).await {
                WsEvent::Text(t) => texts.push(t),
                WsEvent::Heartbeat => heartbeat = true,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(texts, ["ack sub-1", "ack sub-2"]);
        // The pong reaches the server.
        let deadline = Instant::now() + Duration::from_secs(5);
        while srv.pongs.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "no pong received");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*srv.subs.lock().unwrap(), ["sub-1", "sub-2"]);
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .unwrap()
            .unwrap();
        srv.task.abort();
    }

    #[tokio::test]
    async fn reconnects_after_server_close_with_a_fresh_url_each_time() {
        let srv = server(Behaviour::SendOneAndClose).await;
        let cancel = CancellationToken::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let addr = srv.addr;
        let (mut rx, handle) = spawn_ws(
            config(),
            move || {
                let n = c.fetch_add(1, Ordering::SeqCst);
                async move { Ok(format!("ws://{addr}/ws/key-{n}")) }
            },
            vec![],
            cancel.clone(),
        );
        let mut connects = 0;
        while connects < 3 {
            match next(&mut rx).await {
                WsEvent::Connected => connects += 1,
                WsEvent::Text(t) => assert_eq!(t, "hello"),
                WsEvent::Disconnected { .. } | WsEvent::Heartbeat => {}
                WsEvent::Stale => panic!("should not go stale"),
            }
        }
        assert!(calls.load(Ordering::SeqCst) >= 3, "a URL per connect");
        assert!(srv.accepted.load(Ordering::SeqCst) >= 3);
        cancel.cancel();
        handle.await.unwrap();
        srv.task.abort();
    }

    #[tokio::test]
    async fn watchdog_reports_stale_and_reconnects() {
        let srv = server(Behaviour::Silent).await;
        let cancel = CancellationToken::new();
        let url = format!("ws://{}/", srv.addr);
        let (mut rx, handle) = spawn_ws(
            config(),
            move || {
                let url = url.clone();
                async move { Ok(url) }
            },
            vec![],
            cancel.clone(),
        );
        assert_eq!(next(&mut rx).await, WsEvent::Connected);
        assert_eq!(next(&mut rx).await, WsEvent::Stale);
        assert_eq!(next(&mut rx).await, WsEvent::Connected);
        assert!(srv.accepted.load(Ordering::SeqCst) >= 2);
        cancel.cancel();
        handle.await.unwrap();
        srv.task.abort();
    }

    #[tokio::test]
    async fn keeps_retrying_when_nothing_listens_and_stops_on_cancel() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cancel = CancellationToken::new();
        let (mut rx, handle) = spawn_ws(
            config(),
            move || async move { Ok(format!("ws://127.0.0.1:{port}/")) },
            vec![],
            cancel.clone(),
        );
        for _ in 0..3 {
            assert!(matches!(next(&mut rx).await, WsEvent::Disconnected { .. }));
        }
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn url_errors_count_as_failed_attempts_and_forced_reconnects_work() {
        let srv = server(Behaviour::Silent).await;
        let cancel = CancellationToken::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let addr = srv.addr;
        let notify = Arc::new(Notify::new());
        let mut cfg = config();
        cfg.stale_after = Duration::from_secs(30);
        cfg.reconnect = Some(notify.clone());
        let (mut rx, handle) = spawn_ws(
            cfg,
            move || {
                let n = c.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        Err("listen key refused".to_owned())
                    } else {
                        Ok(format!("ws://{addr}/"))
                    }
                }
            },
            vec![],
            cancel.clone(),
        );
        assert!(
            matches!(next(&mut rx).await, WsEvent::Disconnected { reason } if reason.contains("listen key refused"))
        );
        assert_eq!(next(&mut rx).await, WsEvent::Connected);
        notify.notify_one();
        assert!(
            matches!(next(&mut rx).await, WsEvent::Disconnected { reason } if reason.contains("reconnect requested"))
        );
        assert_eq!(next(&mut rx).await, WsEvent::Connected);
        cancel.cancel();
        handle.await.unwrap();
        srv.task.abort();
    }

    #[tokio::test]
    async fn dropping_the_receiver_stops_the_task() {
        let srv = server(Behaviour::GreetThenPing).await;
        let url = format!("ws://{}/", srv.addr);
        let (rx, handle) = spawn_ws(
            config(),
            move || {
                let url = url.clone();
                async move { Ok(url) }
            },
            vec!["x".to_owned()],
            CancellationToken::new(),
        );
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .unwrap()
            .unwrap();
        srv.task.abort();
    }

    #[tokio::test]
    async fn subscribe_messages_are_built_fresh_on_every_connect() {
        let srv = server(Behaviour::GreetThenPing).await;
        let cancel = CancellationToken::new();
        let url = format!("ws://{}/", srv.addr);
        let notify = Arc::new(Notify::new());
        let mut cfg = config();
        cfg.stale_after = Duration::from_secs(30);
        cfg.reconnect = Some(notify.clone());
        let mut token = 0;
        let (mut rx, handle) = spawn_ws_with_hooks(
            cfg,
            move || {
                let url = url.clone();
                async move { Ok(url) }
            },
            SubscribeWith(move || {
                token += 1;
                Ok(vec![format!(
                    r#"{{"type":"subscribe","jwt":"token-{token}"}}"#
                )])
            }),
            cancel.clone(),
        );
        assert_eq!(next(&mut rx).await, WsEvent::Connected);
        loop {
            if let WsEvent::Text(t) = next(&mut rx).await {
                assert!(t.contains("token-1"), "{t}");
                break;
            }
        }
        notify.notify_one();
        loop {
            if next(&mut rx).await == WsEvent::Connected {
                break;
            }
        }
        loop {
            if let WsEvent::Text(t) = next(&mut rx).await {
                assert!(t.contains("token-2"), "a fresh token: {t}");
                break;
            }
        }
        let subs = srv.subs.lock().unwrap().clone();
        assert_eq!(subs.len(), 2, "{subs:?}");
        assert_ne!(subs[0], subs[1]);
        cancel.cancel();
        handle.await.unwrap();
        srv.task.abort();
    }

    /// A `wss://` server with a self-signed certificate: refused with the webpki roots
    /// alone, accepted once the certificate is an extra root.
    #[tokio::test]
    async fn wss_trusts_extra_roots_and_only_them() {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};

        let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let cert_pem = generated.cert.pem();
        let chain = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(generated.signing_key.serialize_pem().as_bytes())
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(sock).await else {
                        return;
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                        return;
                    };
                    let _ = ws.send(Message::text("over tls")).await;
                    while ws.next().await.is_some() {}
                });
            }
        });
        let url = format!("wss://{addr}/");
        let run = |tls: Option<Arc<rustls::ClientConfig>>| {
            let mut cfg = config();
            cfg.stale_after = Duration::from_secs(30);
            cfg.tls = tls;
            let url = url.clone();
            let cancel = CancellationToken::new();
            let (rx, handle) = spawn_ws(
                cfg,
                move || {
                    let url = url.clone();
                    async move { Ok(url) }
                },
                vec![],
                cancel.clone(),
            );
            (rx, handle, cancel)
        };
        // Webpki roots only: the handshake fails, and keeps failing.
        let (mut rx, handle, cancel) = run(Some(crate::tls::client_config(&[]).unwrap()));
        assert!(
            matches!(next(&mut rx).await, WsEvent::Disconnected { reason } if reason.contains("connect failed")),
        );
        cancel.cancel();
        handle.await.unwrap();
        // The certificate as an extra root: connected, data flows.
        let (mut rx, handle, cancel) = run(Some(crate::tls::client_config(&[cert_pem]).unwrap()));
        assert_eq!(next(&mut rx).await, WsEvent::Connected);
        assert_eq!(next(&mut rx).await, WsEvent::Text("over tls".into()));
        cancel.cancel();
        handle.await.unwrap();
        server.abort();
    }

    #[tokio::test]
    async fn a_sequence_gap_forces_a_reconnect() {
        let srv = server(Behaviour::Gap).await;
        let cancel = CancellationToken::new();
        let url = format!("ws://{}/", srv.addr);
        let mut cfg = config();
        cfg.stale_after = Duration::from_secs(30);
        let hooks = SequenceGuard::new(StaticSubscriptions::default(), |t: &str| {
            t.strip_prefix("seq=")?.parse().ok()
        });
        let (mut rx, handle) = spawn_ws_with_hooks(
            cfg,
            move || {
                let url = url.clone();
                async move { Ok(url) }
            },
            hooks,
            cancel.clone(),
        );
        assert_eq!(next(&mut rx).await, WsEvent::Connected);
        assert_eq!(next(&mut rx).await, WsEvent::Text("seq=0".into()));
        assert_eq!(next(&mut rx).await, WsEvent::Text("seq=1".into()));
        assert!(
            matches!(next(&mut rx).await, WsEvent::Disconnected { reason } if reason.contains("sequence gap: 1 -> 3"))
        );
        // The new connection counts from its own first message.
        assert_eq!(next(&mut rx).await, WsEvent::Connected);
        assert_eq!(next(&mut rx).await, WsEvent::Text("seq=0".into()));
        assert!(srv.accepted.load(Ordering::SeqCst) >= 2);
        cancel.cancel();
        handle.await.unwrap();
        srv.task.abort();
    }
}
