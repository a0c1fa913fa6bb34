//! The gRPC `GatewayService`: one router over every gateway a process hosts, and a thin
//! translation between protobuf messages (through `gekko_proto::convert`) and the engine.
//!
//! Every failure maps to a precise status: malformed input is `INVALID_ARGUMENT`, a
//! pre-trade risk refusal is `FAILED_PRECONDITION`, an unknown order is `NOT_FOUND`, a
//! venue rate limit is `RESOURCE_EXHAUSTED`, and an unreachable venue or bus is
//! `UNAVAILABLE`. The message always names the rule or field.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use gekko_core::{ClientOrderId, InstrumentId, Order, OrderRequest, VenueId};
use gekko_proto::convert::{self, ConvertError};
use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_server::GatewayService;
use gekko_security::Caller;
use gekko_venue::{RejectReason, VenueError};
use tonic::{Request, Response, Status};

use crate::checks::CheckError;
use crate::engine::{Gateway, GatewayError};
use crate::forward::Forward;

/// The `GatewayService` over every gateway a process hosts, on one port.
///
/// Each request names its venue; the router hands it to that venue's [`Gateway`]. With
/// exactly one venue hosted the field may be omitted.
#[derive(Debug, Clone)]
pub struct GatewayGrpc {
    gateways: Arc<BTreeMap<VenueId, Gateway>>,
    forward: Arc<crate::forward::Forwarder>,
}

impl GatewayGrpc {
    /// A service hosting one gateway.
    #[must_use]
    pub fn new(gateway: Gateway) -> Self {
        Self::hosting([gateway])
    }

    /// A service routing to every given gateway (one per venue; a later gateway for the
    /// same venue replaces an earlier one).
    #[must_use]
    pub fn hosting(gateways: impl IntoIterator<Item = Gateway>) -> Self {
        Self {
            gateways: Arc::new(gateways.into_iter().map(|g| (g.venue(), g)).collect()),
            forward: Arc::default(),
        }
    }

    /// The venues hosted, in a stable order.
    #[must_use]
    pub fn venues(&self) -> Vec<VenueId> {
        self.gateways.keys().copied().collect()
    }

    /// The tonic server for this service.
    #[must_use]
    pub fn into_server(self) -> pb::gateway_service_server::GatewayServiceServer<Self> {
        pb::gateway_service_server::GatewayServiceServer::new(self)
    }

    /// The hosted venue names, alphabetically, for error messages.
    fn hosted(&self) -> String {
        let mut names: Vec<&str> = self.gateways.keys().map(|v| v.as_str()).collect();
        names.sort_unstable();
        names.join(", ")
    }

    /// The gateway, instrument and client order id of a request about one order.
    fn one_order(
        &self,
        venue: &str,
        pair: &str,
        client_order_id: &str,
    ) -> Result<(&Gateway, InstrumentId, ClientOrderId), Status> {
        let gw = self.pick(venue)?;
        Ok((gw, instrument(gw, pair)?, client_id(client_order_id)?))
    }

    /// The gateway a request's `venue` field names.
    fn pick(&self, venue: &str) -> Result<&Gateway, Status> {
        let venue = venue.trim();
        if venue.is_empty() {
            return match self.gateways.values().next() {
                Some(g) if self.gateways.len() == 1 => Ok(g),
                _ => Err(Status::invalid_argument(format!(
                    "venue: required when several venues are hosted; this process hosts: {}",
                    self.hosted()
                ))),
            };
        }
        venue
            .parse::<VenueId>()
            .ok()
            .and_then(|v| self.gateways.get(&v))
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "venue: {venue:?} is not hosted here; this process hosts: {}",
                    self.hosted()
                ))
            })
    }
}

impl GatewayGrpc {
    /// Serves `r` here, or hands it to the leader when the gateway it names stands by.
    /// A request naming no single hosted gateway is served here (and refused there).
    async fn forward_if_standby<T>(
        &self,
        r: Request<T>,
        venue: impl FnOnce(&T) -> &String,
    ) -> Result<Forward<T>, Status> {
        let Ok(gw) = self.pick(venue(r.get_ref())) else {
            return Ok(Forward::Local(r));
        };
        if gw.is_leader() {
            return Ok(Forward::Local(r));
        }
        if r.metadata().contains_key(crate::forward::FORWARDED) {
            return Err(Status::unavailable(format!(
                "the {} gateway replica this call was forwarded to is a standby too (the leader changed); retry",
                gw.venue()
            )));
        }
        let addr = match gw.leader_address() {
            Some(a) => a,
            None => gw.refresh_leader().await.ok_or_else(|| {
                Status::unavailable(format!(
                    "this {} gateway replica is a standby and no replica holds the lease right now (a takeover is under way); retry",
                    gw.venue()
                ))
            })?,
        };
        metrics::counter!("gekko_gateway_forwarded_calls_total", "venue" => gw.venue().as_str())
            .increment(1);
        let client = self.forward.client(&addr)?;
        Ok(Forward::Leader(client, crate::forward::forwarded(r)))
    }
}

fn instrument(gw: &Gateway, pair: &str) -> Result<InstrumentId, Status> {
    let id = InstrumentId::parse_pair(gw.venue(), pair)
        .map_err(|e| Status::invalid_argument(format!("instrument: {e}")))?;
    if !gw.configured_instruments().contains(&id) {
        return Err(Status::not_found(format!(
            "instrument {pair} is not traded by the {} gateway",
            gw.venue()
        )));
    }
    Ok(id)
}

/// An instrument field that may be empty (meaning every configured instrument).
fn optional_instrument(gw: &Gateway, pair: &str) -> Result<Option<InstrumentId>, Status> {
    if pair.is_empty() {
        Ok(None)
    } else {
        instrument(gw, pair).map(Some)
    }
}

fn instruments(gw: &Gateway, pairs: &[String]) -> Result<Vec<InstrumentId>, Status> {
    pairs.iter().map(|p| instrument(gw, p)).collect()
}

fn invalid(e: ConvertError) -> Status {
    Status::invalid_argument(e.to_string())
}

fn client_id(s: &str) -> Result<ClientOrderId, Status> {
    ClientOrderId::parse(s).map_err(|e| Status::invalid_argument(format!("client_order_id: {e}")))
}

/// Starts a gateway over `venue` on a hosted service's context (the host's bus,
/// readiness, tracker and cancellation) with its order commands, cancels, closes and kill
/// switch going to the host's audit trail. Every gateway service's start is this plus
/// building its venue client.
///
/// # Errors
/// The gateway's start-up failure (credentials, reconciliation, ...).
pub async fn start_hosted(
    venue: Arc<dyn gekko_venue::VenueAdapter>,
    cfg: crate::engine::GatewayConfig,
    ctx: &gekko_runtime::ServiceCtx,
) -> Result<Gateway, crate::engine::StartError> {
    let label = venue.id().as_str();
    let mut cfg = cfg;
    if let Some(lease) = &mut cfg.lease {
        crate::lease::fill_identity(lease, ctx.grpc_addr());
    }
    let (gateway, report) = Gateway::start(
        venue,
        ctx.bus().clone(),
        cfg,
        ctx.readiness(),
        ctx.tracker(),
        ctx.cancel(),
    )
    .await?;
    tracing::info!(venue = label, ?report, "gateway started");
    gateway.attach_audit(ctx.audit().clone());
    Ok(gateway)
}

/// Serves every hosted gateway as `gekko.v1.GatewayService`: the one place gateway gRPC
/// is registered, for each gateway binary and for `gekko up` alike (a host
/// [`GrpcComposer`](gekko_runtime::GrpcComposer)).
///
/// One router over every [provided](gekko_runtime::Started::provide) [`Gateway`], since
/// each request names its venue; a process hosting no gateway serves no `GatewayService`.
pub fn serve_gateways(
    provided: &gekko_runtime::Provided,
    server: gekko_runtime::GrpcServer,
) -> gekko_runtime::GrpcServer {
    let gateways = provided.all::<Gateway>();
    if gateways.is_empty() {
        return server;
    }
    server.add_service(GatewayGrpc::hosting(gateways).into_server())
}

/// Maps a gateway error to a precise gRPC status.
#[must_use]
pub fn status_of(e: &GatewayError) -> Status {
    match e {
        GatewayError::Check(c) => match c {
            CheckError::Invalid(_) | CheckError::Filter { .. } => {
                Status::invalid_argument(c.to_string())
            }
            CheckError::NotTradable(_) => Status::not_found(c.to_string()),
            CheckError::TradingDisabled
            | CheckError::KillSwitch { .. }
            | CheckError::NoReferencePrice(_)
            | CheckError::Restricted(_)
            | CheckError::Risk { .. } => Status::failed_precondition(c.to_string()),
        },
        GatewayError::Venue(v) => match v {
            VenueError::Rejected {
                reason: RejectReason::UnknownOrder,
                ..
            } => Status::not_found(v.to_string()),
            VenueError::Rejected {
                reason: RejectReason::RateLimited,
                ..
            } => Status::resource_exhausted(v.to_string()),
            VenueError::Rejected { .. } => Status::failed_precondition(v.to_string()),
            VenueError::RateLimited { .. } => Status::resource_exhausted(v.to_string()),
            VenueError::CircuitOpen { .. } | VenueError::Transport(_) => {
                Status::unavailable(v.to_string())
            }
            VenueError::Auth(_) => Status::unauthenticated(v.to_string()),
            VenueError::Malformed { .. } => Status::internal(v.to_string()),
            VenueError::Unsupported { .. } => Status::unimplemented(v.to_string()),
        },
        GatewayError::Persist(_) | GatewayError::Bus(_) => Status::unavailable(e.to_string()),
        GatewayError::UnknownOrder(_) => Status::not_found(e.to_string()),
        GatewayError::Invalid(_) => Status::invalid_argument(e.to_string()),
    }
}

/// Converts an order to its protobuf form.
#[must_use]
pub fn order_pb(o: &Order) -> pb::OrderMsg {
    convert::order_to_pb(o)
}

fn reply(o: Result<Order, GatewayError>) -> Result<Response<pb::OrderReply>, Status> {
    let o = o.map_err(|e| status_of(&e))?;
    Ok(Response::new(pb::OrderReply {
        order: Some(order_pb(&o)),
    }))
}

/// Levels per side `GetOrderBook` returns when the request gives no depth.
const DEFAULT_BOOK_DEPTH: usize = 10;
/// The most levels per side `GetOrderBook` returns.
const MAX_BOOK_DEPTH: usize = 500;

/// How long `SetTradingEnabled` waits for cancels when the request gives no deadline.
const DEFAULT_CANCEL_DEADLINE_MS: u64 = 10_000;

/// The name of the authenticated caller, for the kill-switch record and the audit trail.
/// The security layer puts a [`Caller`] in the request's extensions; a server without
/// that layer (a test, auth switched off by hand) gives `anonymous`.
fn caller_name<T>(r: &Request<T>) -> String {
    Caller::of(r).map_or_else(|| gekko_security::ANONYMOUS.to_owned(), |c| c.name.clone())
}

/// The audit detail naming a venue and instruments.
fn scope(gw: &Gateway, instruments: &[InstrumentId]) -> serde_json::Value {
    serde_json::json!({
        "venue": gw.venue().as_str(),
        "instruments": if instruments.is_empty() {
            gw.configured_instruments().iter().map(InstrumentId::pair).collect::<Vec<_>>()
        } else {
            instruments.iter().map(InstrumentId::pair).collect()
        },
    })
}

type QuoteStream = Pin<Box<dyn Stream<Item = Result<pb::QuoteUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl GatewayService for GatewayGrpc {
    async fn get_account(
        &self,
        r: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let r = match self.forward_if_standby(r, |r| &r.venue).await? {
            Forward::Local(r) => r,
            Forward::Leader(mut client, r) => {
                return client
                    .get_account(r)
                    .await
                    .map_err(crate::forward::from_leader);
            }
        };
        let gw = self.pick(&r.get_ref().venue)?;
        let (balances, positions) = gw.account().await.map_err(|e| status_of(&e))?;
        let margin = gw.margin().await.map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::GetAccountResponse {
            venue: gw.venue().to_string(),
            balances: balances.iter().map(convert::balance_to_pb).collect(),
            positions: positions.iter().map(convert::position_to_pb).collect(),
            margin: margin.as_ref().map(convert::margin_to_pb),
        }))
    }

    async fn get_instruments(
        &self,
        r: Request<pb::GetInstrumentsRequest>,
    ) -> Result<Response<pb::GetInstrumentsResponse>, Status> {
        let r = r.into_inner();
        let gw = self.pick(&r.venue)?;
        let wanted = instruments(gw, &r.instruments)?;
        let instruments = gw
            .instruments()
            .iter()
            .filter(|i| wanted.is_empty() || wanted.contains(&i.id))
            .map(convert::instrument_to_pb)
            .collect();
        Ok(Response::new(pb::GetInstrumentsResponse { instruments }))
    }

    async fn place_order(
        &self,
        r: Request<pb::PlaceOrderRequest>,
    ) -> Result<Response<pb::OrderReply>, Status> {
        let r = match self.forward_if_standby(r, |r| &r.venue).await? {
            Forward::Local(r) => r,
            Forward::Leader(mut client, r) => {
                return client
                    .place_order(r)
                    .await
                    .map_err(crate::forward::from_leader);
            }
        };
        let actor = caller_name(&r);
        let r = r.into_inner();
        let gw = self.pick(&r.venue)?;
        let instrument = instrument(gw, &r.instrument)?;
        let side = convert::side_from_pb(r.side).map_err(invalid)?;
        let order_type = convert::order_type_from_pb(r.r#type).map_err(invalid)?;
        let qty = convert::decimal("qty", &r.qty).map_err(invalid)?;
        let price = convert::optional_decimal("price", &r.price).map_err(invalid)?;
        let time_in_force = convert::time_in_force_from_pb(
            r.time_in_force,
            order_type,
            r.expire_time_ms,
            gekko_core::now_ms(),
        )
        .map_err(invalid)?;
        let client_order_id = match (r.client_order_id.is_empty(), r.strategy.is_empty()) {
            (false, true) => client_id(&r.client_order_id)?,
            (true, false) => gw.derive_client_order_id(&r.strategy, &instrument, r.sequence),
            _ => {
                return Err(Status::invalid_argument(
                    "give either client_order_id, or strategy + sequence to derive one (not both)",
                ));
            }
        };
        let req = OrderRequest {
            client_order_id,
            instrument,
            side,
            order_type,
            qty,
            price,
            time_in_force,
        };
        reply(gw.place_order_as(&actor, req).await)
    }

    async fn cancel_order(
        &self,
        r: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::OrderReply>, Status> {
        let r = match self.forward_if_standby(r, |r| &r.venue).await? {
            Forward::Local(r) => r,
            Forward::Leader(mut client, r) => {
                return client
                    .cancel_order(r)
                    .await
                    .map_err(crate::forward::from_leader);
            }
        };
        let actor = caller_name(&r);
        let r = r.into_inner();
        let (gw, inst, id) = self.one_order(&r.venue, &r.instrument, &r.client_order_id)?;
        let result = gw.cancel_order(&inst, &id).await;
        let detail = serde_json::json!({
            "venue": gw.venue().as_str(),
            "instrument": inst.pair(),
            "client_order_id": id.as_str(),
        });
        gw.audit_result(&actor, "order.cancel", detail, &result);
        reply(result)
    }

    async fn cancel_all_orders(
        &self,
        r: Request<pb::CancelAllOrdersRequest>,
    ) -> Result<Response<pb::CancelAllOrdersResponse>, Status> {
        let r = match self.forward_if_standby(r, |r| &r.venue).await? {
            Forward::Local(r) => r,
            Forward::Leader(mut client, r) => {
                return client
                    .cancel_all_orders(r)
                    .await
                    .map_err(crate::forward::from_leader);
            }
        };
        let actor = caller_name(&r);
        let r = r.into_inner();
        let gw = self.pick(&r.venue)?;
        let list: Vec<InstrumentId> = optional_instrument(gw, &r.instrument)?
            .into_iter()
            .collect();
        let result = gw.cancel_all(&list).await;
        gw.audit_orders(&actor, "order.cancel_all", scope(gw, &list), &result);
        let cancelled = result.map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::CancelAllOrdersResponse {
            cancelled: cancelled.iter().map(order_pb).collect(),
        }))
    }

    async fn get_order(
        &self,
        r: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::OrderReply>, Status> {
        let r = match self.forward_if_standby(r, |r| &r.venue).await? {
            Forward::Local(r) => r,
            Forward::Leader(mut client, r) => {
                return client
                    .get_order(r)
                    .await
                    .map_err(crate::forward::from_leader);
            }
        };
        let r = r.into_inner();
        let (gw, inst, id) = self.one_order(&r.venue, &r.instrument, &r.client_order_id)?;
        reply(gw.refresh_order(&inst, &id).await)
    }

    async fn list_open_orders(
        &self,
        r: Request<pb::ListOpenOrdersRequest>,
    ) -> Result<Response<pb::ListOpenOrdersResponse>, Status> {
        let r = match self.forward_if_standby(r, |r| &r.venue).await? {
            Forward::Local(r) => r,
            Forward::Leader(mut client, r) => {
                return client
                    .list_open_orders(r)
                    .await
                    .map_err(crate::forward::from_leader);
            }
        };
        let r = r.into_inner();
        let gw = self.pick(&r.venue)?;
        let inst = optional_instrument(gw, &r.instrument)?;
        let orders = gw.open_orders(inst.as_ref());
        Ok(Response::new(pb::ListOpenOrdersResponse {
            orders: orders.iter().map(order_pb).collect(),
        }))
    }

    async fn close_positions(
        &self,
        r: Request<pb::ClosePositionsRequest>,
    ) -> Result<Response<pb::ClosePositionsResponse>, Status> {
        let r = match self.forward_if_standby(r, |r| &r.venue).await? {
            Forward::Local(r) => r,
            Forward::Leader(mut client, r) => {
                return client
                    .close_positions(r)
                    .await
                    .map_err(crate::forward::from_leader);
            }
        };
        let actor = caller_name(&r);
        let r = r.into_inner();
        let gw = self.pick(&r.venue)?;
        if !r.confirm {
            return Err(Status::failed_precondition(
                "close_positions sells holdings at market; set confirm=true to do it",
            ));
        }
        let list = instruments(gw, &r.instruments)?;
        let result = gw.close_positions(&list).await;
        gw.audit_orders(&actor, "positions.close", scope(gw, &list), &result);
        let orders = result.map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::ClosePositionsResponse {
            orders: orders.iter().map(order_pb).collect(),
        }))
    }

    async fn set_trading_enabled(
        &self,
        r: Request<pb::SetTradingEnabledRequest>,
    ) -> Result<Response<pb::SetTradingEnabledResponse>, Status> {
        let r = match self.forward_if_standby(r, |r| &r.venue).await? {
            Forward::Local(r) => r,
            Forward::Leader(mut client, r) => {
                return client
                    .set_trading_enabled(r)
                    .await
                    .map_err(crate::forward::from_leader);
            }
        };
        let actor = caller_name(&r);
        let r = r.into_inner();
        let reason = r.reason.trim();
        if reason.is_empty() {
            return Err(Status::invalid_argument(
                "reason: required (it is recorded with the change and named in every refusal)",
            ));
        }
        let targets: Vec<&Gateway> = if r.venue.trim().is_empty() {
            self.gateways.values().collect()
        } else {
            vec![self.pick(&r.venue)?]
        };
        let deadline = Duration::from_millis(match r.cancel_deadline_ms {
            0 => DEFAULT_CANCEL_DEADLINE_MS,
            ms => u64::from(ms),
        });
        // Venues are independent: switch (and cancel on) all of them at once, so one slow
        // venue does not delay the halt of the others.
        let actor = actor.as_str();
        let venues = futures::future::join_all(targets.into_iter().map(|gw| async move {
            let state = gw.set_trading_enabled(r.enabled, reason, actor).await;
            let mut out = pb::VenueTradingState {
                venue: gw.venue().to_string(),
                trading_enabled: state.trading_enabled,
                halted: state.halted.is_some(),
                reason: state.halted.map(|h| h.reason).unwrap_or_default(),
                durable: state.durable,
                ..Default::default()
            };
            if !r.enabled && r.cancel_working {
                let report = gw.cancel_working_by(actor, deadline).await;
                out.cancelled = u32::try_from(report.cancelled.len()).unwrap_or(u32::MAX);
                out.not_cancelled = u32::try_from(report.not_cancelled.len()).unwrap_or(u32::MAX);
                out.cancel_confirmed = report.confirmed;
                out.errors = report
                    .not_cancelled
                    .iter()
                    .map(|u| {
                        format!(
                            "{} not cancelled: {}",
                            u.order.request.client_order_id, u.reason
                        )
                    })
                    .chain(report.errors)
                    .collect();
            }
            out
        }))
        .await;
        Ok(Response::new(pb::SetTradingEnabledResponse { venues }))
    }

    async fn get_quote(
        &self,
        r: Request<pb::GetQuoteRequest>,
    ) -> Result<Response<pb::QuoteUpdate>, Status> {
        let r = r.into_inner();
        let gw = self.pick(&r.venue)?;
        let inst = instrument(gw, &r.instrument)?;
        gw.last_quotes()
            .remove(&inst.pair())
            .map(|q| Response::new(convert::quote_to_pb(&q)))
            .ok_or_else(|| {
                Status::unavailable(format!(
                    "no quote for {} on {} yet; market data is not flowing",
                    inst.pair(),
                    gw.venue()
                ))
            })
    }

    async fn get_order_book(
        &self,
        r: Request<pb::GetOrderBookRequest>,
    ) -> Result<Response<pb::GetOrderBookResponse>, Status> {
        let r = r.into_inner();
        let gw = self.pick(&r.venue)?;
        let inst = instrument(gw, &r.instrument)?;
        let depth = match r.depth {
            0 => DEFAULT_BOOK_DEPTH,
            d if d as usize > MAX_BOOK_DEPTH => {
                return Err(Status::invalid_argument(format!(
                    "depth: {d} is more than {MAX_BOOK_DEPTH} levels"
                )));
            }
            d => d as usize,
        };
        let levels = |side: &[gekko_core::BookLevel]| -> Vec<pb::BookLevelMsg> {
            side.iter()
                .take(depth)
                .map(|l| pb::BookLevelMsg {
                    price: l.price.to_string(),
                    qty: l.qty.to_string(),
                })
                .collect()
        };
        if let Some(book) = gw.book(&inst) {
            return Ok(Response::new(pb::GetOrderBookResponse {
                instrument: inst.pair(),
                bids: levels(&book.bids),
                asks: levels(&book.asks),
                sequence: book.sequence,
                ts_ms: book.ts_ms,
                source: "book".to_owned(),
            }));
        }
        // No synchronised book (a venue without a book feed, or one still syncing): the
        // latest quote is the best the gateway knows, and says so.
        let q = gw.last_quotes().remove(&inst.pair()).ok_or_else(|| {
            Status::unavailable(format!(
                "no order book or quote for {} on {} yet; market data is not flowing",
                inst.pair(),
                gw.venue()
            ))
        })?;
        let one = |price, qty| vec![gekko_core::BookLevel { price, qty }];
        Ok(Response::new(pb::GetOrderBookResponse {
            instrument: inst.pair(),
            bids: levels(&one(q.bid, q.bid_size)),
            asks: levels(&one(q.ask, q.ask_size)),
            sequence: 0,
            ts_ms: q.ts_ms,
            source: "top_of_book".to_owned(),
        }))
    }

    type StreamQuotesStream = QuoteStream;

    async fn stream_quotes(
        &self,
        r: Request<pb::StreamQuotesRequest>,
    ) -> Result<Response<Self::StreamQuotesStream>, Status> {
        let r = r.into_inner();
        let gw = self.pick(&r.venue)?;
        let wanted = instruments(gw, &r.instruments)?;
        let rx = gw.subscribe_quotes();
        let stop = gw.shutdown_token().cancelled_owned();
        let quotes =
            futures::StreamExt::take_until(tokio_stream::wrappers::BroadcastStream::new(rx), stop);
        let stream = quotes.filter_map(move |q| {
            // A lagging client skips quotes rather than slowing the gateway down.
            let q = q.ok()?;
            if !wanted.is_empty() && !wanted.contains(&q.instrument) {
                return None;
            }
            Some(Ok(convert::quote_to_pb(&q)))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

use tokio_stream::StreamExt as _;
