//! The websocket server: market streams, the user-data stream, live subscriptions.
//!
//! Paths follow the venue: raw streams at `/ws/<stream>[/<stream>...]` (payloads sent
//! bare), combined streams at `/stream?streams=a/b/c` (payloads wrapped as
//! `{"stream":..,"data":..}`), and the user-data stream at `/ws/<listenKey>` (a listenKey
//! may also be one of the combined streams, as on binance.com). Control messages
//! `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`/`GET_PROPERTY`
//! (`combined`) work on every connection.
//!
//! Each connection is one task that `select!`s over: shutdown, the drop-all signal,
//! its ping timer, the market and user event broadcasts, and the client's frames. The
//! broadcast receivers are created *before* the handshake, so no event published after
//! the client's TCP connect can be missed; a client that subscribes and then fetches a
//! REST snapshot therefore always has every diff after the snapshot. A connection that
//! falls more than the channel capacity behind is closed, like a slow consumer.
//!
//! Faults: `DropWebSockets` drops every socket without a close frame, `SilentStreams`
//! suppresses every outgoing frame (data and pings), `MalformedNext` corrupts the next
//! market messages sent on any connection.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, interval_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::http::StatusCode;

use super::encode::{MarketEvent, MarketKind, UserEvent};
use super::state::Shared;
use crate::harness::bump;

/// How long a client may take to complete the websocket handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The streams a connection asked for in its URL.
struct Route {
    combined: bool,
    streams: Vec<String>,
}

fn reject(status: StatusCode, msg: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(msg.to_owned()));
    *r.status_mut() = status;
    r
}

/// The handshake callback: routes the request and remembers the result.
struct Router<'a> {
    app: &'a Shared,
    routed: &'a mut Option<Route>,
}

impl Callback for Router<'_> {
    fn on_request(self, req: &Request, resp: Response) -> Result<Response, ErrorResponse> {
        match route(self.app, req) {
            Ok(r) => {
                *self.routed = Some(r);
                Ok(resp)
            }
            Err((status, msg)) => Err(reject(status, msg)),
        }
    }
}

fn route(app: &Shared, req: &Request) -> Result<Route, (StatusCode, &'static str)> {
    let uri = req.uri();
    let path = uri.path();
    let (combined, streams): (bool, Vec<String>) = if path == "/ws" || path == "/ws/" {
        (false, Vec::new())
    } else if let Some(rest) = path.strip_prefix("/ws/") {
        (
            false,
            rest.split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    } else if path == "/stream" || path == "/stream/" {
        let streams = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == "streams")
            .map(|(_, v)| {
                v.split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        (true, streams)
    } else {
        return Err((StatusCode::NOT_FOUND, "Not found"));
    };
    let now = app.now_ms();
    let venue = app.venue();
    for s in &streams {
        if !s.contains('@') && venue.resolve_listen_key(s, now).is_none() {
            return Err((StatusCode::BAD_REQUEST, "Invalid listen key or stream name"));
        }
    }
    Ok(Route { combined, streams })
}

/// Decrements the open-connection gauge however the connection ends.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.harness.stats.ws_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Per-connection subscription state.
struct Conn {
    app: Arc<Shared>,
    combined: bool,
    /// Market stream names.
    streams: BTreeSet<String>,
    /// listenKey -> account.
    users: BTreeMap<String, String>,
    malformed_sent: u64,
}

/// Why a connection loop stops.
struct Closed;

type Ws = WebSocketStream<TcpStream>;

impl Conn {
    fn add(&mut self, stream: &str) -> bool {
        if stream.contains('@') {
            self.streams.insert(stream.to_owned());
            true
        } else if let Some(key) = self
            .app
            .venue()
            .resolve_listen_key(stream, self.app.now_ms())
        {
            self.users.insert(stream.to_owned(), key);
            true
        } else {
            false
        }
    }

    async fn send(&self, ws: &mut Ws, text: String) -> Result<(), Closed> {
        if self.app.harness.faults.is_silent() {
            return Ok(());
        }
        ws.send(Message::text(text)).await.map_err(|_| Closed)?;
        bump(&self.app.harness.stats.ws_messages_sent);
        Ok(())
    }

    fn wrap(&self, stream: &str, payload: &str) -> String {
        if self.combined {
            let name = serde_json::to_string(stream).unwrap_or_else(|_| "\"\"".to_owned());
            format!("{{\"stream\":{name},\"data\":{payload}}}")
        } else {
            payload.to_owned()
        }
    }

    async fn on_market(&mut self, ws: &mut Ws, ev: &MarketEvent) -> Result<(), Closed> {
        let s = &ev.symbol_lower;
        let names: Vec<String> = match ev.kind {
            MarketKind::Depth => vec![format!("{s}@depth"), format!("{s}@depth@100ms")],
            MarketKind::BookTicker => vec![format!("{s}@bookTicker")],
            MarketKind::Trade => vec![format!("{s}@trade")],
        };
        for name in names.iter().filter(|n| self.streams.contains(*n)) {
            if self.app.harness.faults.is_silent() {
                continue;
            }
            let text = if self.app.harness.faults.take_malformed() {
                self.malformed_sent += 1;
                // Alternate truncated JSON and a valid document of the wrong shape.
                if self.malformed_sent % 2 == 1 {
                    "{\"u\":\"x\"".to_owned()
                } else {
                    "{\"s\":1}".to_owned()
                }
            } else {
                self.wrap(name, &ev.payload)
            };
            self.send(ws, text).await?;
        }
        Ok(())
    }

    async fn on_user(&mut self, ws: &mut Ws, ev: &UserEvent) -> Result<(), Closed> {
        let keys: Vec<String> = self
            .users
            .iter()
            .filter(|(_, acct)| **acct == ev.api_key)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            let text = self.wrap(&k, &ev.payload);
            self.send(ws, text).await?;
        }
        Ok(())
    }

    /// Answers one control message; `None` when nothing is to be sent.
    fn control(&mut self, text: &str) -> Value {
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return json!({"code": 3, "msg": format!("Invalid JSON: {e}")}),
        };
        let id = v.get("id").cloned().unwrap_or(Value::Null);
        let params = v.get("params");
        let strings = |p: Option<&Value>| -> Option<Vec<String>> {
            p?.as_array()?
                .iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect()
        };
        let invalid =
            |what: &str| json!({"code": 2, "msg": format!("Invalid request: {what}"), "id": id});
        match v.get("method").and_then(Value::as_str) {
            Some("SUBSCRIBE") => {
                let Some(list) = strings(params) else {
                    return invalid("'params' must be an array of strings");
                };
                for s in &list {
                    if !self.add(s) {
                        return invalid(&format!("unknown stream or listenKey '{s}'"));
                    }
                }
                json!({"result": null, "id": id})
            }
            Some("UNSUBSCRIBE") => {
                let Some(list) = strings(params) else {
                    return invalid("'params' must be an array of strings");
                };
                for s in &list {
                    self.streams.remove(s);
                    self.users.remove(s);
                }
                json!({"result": null, "id": id})
            }
            Some("LIST_SUBSCRIPTIONS") => {
                let all: Vec<&String> = self.streams.iter().chain(self.users.keys()).collect();
                json!({"result": all, "id": id})
            }
            Some("SET_PROPERTY") => match params.and_then(Value::as_array).map(Vec::as_slice) {
                Some([name, value]) if name == "combined" => match value.as_bool() {
                    Some(b) => {
                        self.combined = b;
                        json!({"result": null, "id": id})
                    }
                    None => {
                        json!({"code": 1, "msg": "Invalid value type: expected Boolean", "id": id})
                    }
                },
                _ => json!({"code": 0, "msg": "Unknown property", "id": id}),
            },
            Some("GET_PROPERTY") => match params.and_then(Value::as_array).map(Vec::as_slice) {
                Some([name]) if name == "combined" => json!({"result": self.combined, "id": id}),
                _ => json!({"code": 0, "msg": "Unknown property", "id": id}),
            },
            _ => invalid("unknown method"),
        }
    }
}

/// Serves one accepted TCP connection (the harness's accept loop runs it on the
/// simulator's task tracker).
pub(crate) async fn connection(stream: TcpStream, app: Arc<Shared>) {
    // Subscribe before the handshake: see the module docs.
    let mut market_rx = app.market_tx.subscribe();
    let mut user_rx = app.user_tx.subscribe();
    let mut drop_rx = app.harness.faults.ws_drops();
    let mut routed = None;
    let callback = Router {
        app: &app,
        routed: &mut routed,
    };
    let handshake = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_hdr_async(stream, callback),
    );
    let mut ws = match handshake.await {
        Ok(Ok(ws)) => ws,
        _ => return,
    };
    let Some(route) = routed else { return };
    bump(&app.harness.stats.ws_connections);
    app.harness.stats.ws_open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(Arc::clone(&app));
    let mut conn = Conn {
        app: Arc::clone(&app),
        combined: route.combined,
        streams: BTreeSet::new(),
        users: BTreeMap::new(),
        malformed_sent: 0,
    };
    for s in &route.streams {
        conn.add(s);
    }
    let mut ping = interval_at(Instant::now() + app.ping_interval, app.ping_interval);
    loop {
        let step: Result<(), Closed> = tokio::select! {
            () = app.harness.cancel.cancelled() => Err(Closed),
            // Any change (or the sender going away) drops the socket without a close frame.
            _ = drop_rx.changed() => Err(Closed),
            _ = ping.tick() => {
                if app.harness.faults.is_silent() {
                    Ok(())
                } else {
                    ws.send(Message::Ping(Default::default())).await.map_err(|_| Closed)
                }
            }
            ev = market_rx.recv() => match ev {
                Ok(ev) => conn.on_market(&mut ws, &ev).await,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "sim-binanceus: closing a websocket that fell behind");
                    Err(Closed)
                }
                Err(RecvError::Closed) => Err(Closed),
            },
            ev = user_rx.recv() => match ev {
                Ok(ev) => conn.on_user(&mut ws, &ev).await,
                Err(RecvError::Lagged(_) | RecvError::Closed) => Err(Closed),
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let reply = conn.control(t.as_str());
                    conn.send(&mut ws, reply.to_string()).await
                }
                // tungstenite queues the pong itself; flushing sends it now.
                Some(Ok(Message::Ping(_))) if !app.harness.faults.is_silent() => {
                    ws.flush().await.map_err(|_| Closed)
                }
                Some(Ok(_)) => Ok(()),
                Some(Err(_)) | None => Err(Closed),
            },
        };
        if step.is_err() {
            break;
        }
    }
    // Dropping `ws` closes the TCP connection without a close frame.
}
