//! The gRPC `GatewayService`: a thin translation between protobuf messages and the engine.
//!
//! Every failure maps to a precise status: malformed input is `INVALID_ARGUMENT`, a
//! pre-trade risk refusal is `FAILED_PRECONDITION`, an unknown order is `NOT_FOUND`, a
//! venue rate limit is `RESOURCE_EXHAUSTED`, and an unreachable venue or bus is
//! `UNAVAILABLE`. The message always names the rule or field.

use std::pin::Pin;
use std::str::FromStr;

use futures::Stream;
use gekko_core::{
    ClientOrderId, InstrumentId, Order, OrderRequest, OrderStatus, OrderType, Side, TimeInForce,
};
use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_server::GatewayService;
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use crate::checks::CheckError;
use crate::engine::{Gateway, GatewayError};
use gekko_venue::{RejectReason, VenueError};

/// The service over one [`Gateway`].
#[derive(Debug, Clone)]
pub struct GatewayGrpc {
    gateway: Gateway,
}

impl GatewayGrpc {
    /// Wraps a running gateway.
    #[must_use]
    pub fn new(gateway: Gateway) -> Self {
        Self { gateway }
    }

    /// The tonic server for this service.
    #[must_use]
    pub fn into_server(self) -> pb::gateway_service_server::GatewayServiceServer<Self> {
        pb::gateway_service_server::GatewayServiceServer::new(self)
    }

    fn instrument(&self, pair: &str) -> Result<InstrumentId, Status> {
        let id = InstrumentId::parse_pair(self.gateway.venue(), pair)
            .map_err(|e| Status::invalid_argument(format!("instrument: {e}")))?;
        if !self.gateway.configured_instruments().contains(&id) {
            return Err(Status::not_found(format!(
                "instrument {pair} is not traded by this gateway"
            )));
        }
        Ok(id)
    }

    fn instruments(&self, pairs: &[String]) -> Result<Vec<InstrumentId>, Status> {
        pairs.iter().map(|p| self.instrument(p)).collect()
    }
}

fn decimal(field: &str, s: &str) -> Result<Decimal, Status> {
    Decimal::from_str(s.trim())
        .map_err(|_| Status::invalid_argument(format!("{field}: {s:?} is not a decimal number")))
}

fn client_id(s: &str) -> Result<ClientOrderId, Status> {
    ClientOrderId::parse(s).map_err(|e| Status::invalid_argument(format!("client_order_id: {e}")))
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
            CheckError::TradingDisabled | CheckError::Restricted(_) | CheckError::Risk { .. } => {
                Status::failed_precondition(c.to_string())
            }
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
        GatewayError::Persist(_) => Status::unavailable(e.to_string()),
        GatewayError::UnknownOrder(_) => Status::not_found(e.to_string()),
        GatewayError::Invalid(_) => Status::invalid_argument(e.to_string()),
    }
}

fn side_pb(s: Side) -> i32 {
    match s {
        Side::Buy => pb::Side::Buy as i32,
        Side::Sell => pb::Side::Sell as i32,
    }
}

fn status_pb(s: OrderStatus) -> i32 {
    (match s {
        OrderStatus::PendingNew => pb::OrderStatus::PendingNew,
        OrderStatus::InFlight => pb::OrderStatus::InFlight,
        OrderStatus::New => pb::OrderStatus::New,
        OrderStatus::PartiallyFilled => pb::OrderStatus::PartiallyFilled,
        OrderStatus::Filled => pb::OrderStatus::Filled,
        OrderStatus::Cancelled => pb::OrderStatus::Cancelled,
        OrderStatus::Rejected => pb::OrderStatus::Rejected,
        OrderStatus::Expired => pb::OrderStatus::Expired,
    }) as i32
}

/// Converts an order to its protobuf form.
#[must_use]
pub fn order_pb(o: &Order) -> pb::OrderMsg {
    pb::OrderMsg {
        client_order_id: o.request.client_order_id.to_string(),
        venue_order_id: o.venue_order_id.clone().unwrap_or_default(),
        instrument: o.request.instrument.pair(),
        side: side_pb(o.request.side),
        r#type: match o.request.order_type {
            OrderType::Market => pb::OrderType::Market as i32,
            OrderType::Limit => pb::OrderType::Limit as i32,
        },
        qty: o.request.qty.to_string(),
        price: o.request.price.map(|p| p.to_string()).unwrap_or_default(),
        status: status_pb(o.status),
        filled_qty: o.filled_qty.to_string(),
        avg_fill_price: o.avg_fill_price.map(|p| p.to_string()).unwrap_or_default(),
        updated_ms: o.updated_ms,
        reject_reason: o.reject_reason.clone().unwrap_or_default(),
    }
}

fn reply(o: &Order) -> Response<pb::OrderReply> {
    Response::new(pb::OrderReply {
        order: Some(order_pb(o)),
    })
}

type QuoteStream = Pin<Box<dyn Stream<Item = Result<pb::QuoteUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl GatewayService for GatewayGrpc {
    async fn get_account(
        &self,
        _r: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let (balances, positions) = self.gateway.account().await.map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::GetAccountResponse {
            venue: self.gateway.venue().to_string(),
            balances: balances
                .into_iter()
                .map(|b| pb::BalanceMsg {
                    asset: b.asset,
                    free: b.free.to_string(),
                    locked: b.locked.to_string(),
                })
                .collect(),
            positions: positions
                .into_iter()
                .map(|p| pb::PositionMsg {
                    instrument: p.instrument.pair(),
                    qty: p.qty.to_string(),
                    avg_price: p.avg_price.map(|x| x.to_string()).unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn get_instruments(
        &self,
        r: Request<pb::GetInstrumentsRequest>,
    ) -> Result<Response<pb::GetInstrumentsResponse>, Status> {
        let wanted = self.instruments(&r.into_inner().instruments)?;
        let instruments = self
            .gateway
            .instruments()
            .into_iter()
            .filter(|i| wanted.is_empty() || wanted.contains(&i.id))
            .map(|i| pb::InstrumentMsg {
                instrument: i.id.pair(),
                venue_symbol: i.venue_symbol,
                base: i.id.base.clone(),
                quote: i.id.quote.clone(),
                tick_size: i.tick_size.to_string(),
                lot_size: i.lot_size.to_string(),
                min_qty: i.min_qty.to_string(),
                max_qty: i.max_qty.to_string(),
                min_notional: i.min_notional.to_string(),
                trading: i.trading,
            })
            .collect();
        Ok(Response::new(pb::GetInstrumentsResponse { instruments }))
    }

    async fn place_order(
        &self,
        r: Request<pb::PlaceOrderRequest>,
    ) -> Result<Response<pb::OrderReply>, Status> {
        let r = r.into_inner();
        let instrument = self.instrument(&r.instrument)?;
        let side = match pb::Side::try_from(r.side) {
            Ok(pb::Side::Buy) => Side::Buy,
            Ok(pb::Side::Sell) => Side::Sell,
            _ => {
                return Err(Status::invalid_argument(
                    "side: must be SIDE_BUY or SIDE_SELL",
                ));
            }
        };
        let order_type = match pb::OrderType::try_from(r.r#type) {
            Ok(pb::OrderType::Market) => OrderType::Market,
            Ok(pb::OrderType::Limit) => OrderType::Limit,
            _ => {
                return Err(Status::invalid_argument(
                    "type: must be ORDER_TYPE_MARKET or ORDER_TYPE_LIMIT",
                ));
            }
        };
        let qty = decimal("qty", &r.qty)?;
        let price = if r.price.trim().is_empty() {
            None
        } else {
            Some(decimal("price", &r.price)?)
        };
        let time_in_force = match pb::TimeInForce::try_from(r.time_in_force) {
            Ok(pb::TimeInForce::Gtc) => Some(TimeInForce::Gtc),
            Ok(pb::TimeInForce::Ioc) => Some(TimeInForce::Ioc),
            Ok(pb::TimeInForce::Fok) => Some(TimeInForce::Fok),
            Ok(pb::TimeInForce::Unspecified) => {
                (order_type == OrderType::Limit).then_some(TimeInForce::Gtc)
            }
            Err(_) => return Err(Status::invalid_argument("time_in_force: unknown value")),
        };
        let client_order_id = match (r.client_order_id.is_empty(), r.strategy.is_empty()) {
            (false, true) => client_id(&r.client_order_id)?,
            (true, false) => {
                self.gateway
                    .derive_client_order_id(&r.strategy, &instrument, r.sequence)
            }
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
        let order = self
            .gateway
            .place_order(req)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(reply(&order))
    }

    async fn cancel_order(
        &self,
        r: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::OrderReply>, Status> {
        let r = r.into_inner();
        let inst = self.instrument(&r.instrument)?;
        let id = client_id(&r.client_order_id)?;
        let o = self
            .gateway
            .cancel_order(&inst, &id)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(reply(&o))
    }

    async fn cancel_all_orders(
        &self,
        r: Request<pb::CancelAllOrdersRequest>,
    ) -> Result<Response<pb::CancelAllOrdersResponse>, Status> {
        let r = r.into_inner();
        let list = if r.instrument.is_empty() {
            vec![]
        } else {
            vec![self.instrument(&r.instrument)?]
        };
        let cancelled = self
            .gateway
            .cancel_all(&list)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::CancelAllOrdersResponse {
            cancelled: cancelled.iter().map(order_pb).collect(),
        }))
    }

    async fn get_order(
        &self,
        r: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::OrderReply>, Status> {
        let r = r.into_inner();
        let inst = self.instrument(&r.instrument)?;
        let id = client_id(&r.client_order_id)?;
        let o = self
            .gateway
            .refresh_order(&inst, &id)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(reply(&o))
    }

    async fn list_open_orders(
        &self,
        r: Request<pb::ListOpenOrdersRequest>,
    ) -> Result<Response<pb::ListOpenOrdersResponse>, Status> {
        let r = r.into_inner();
        let inst = if r.instrument.is_empty() {
            None
        } else {
            Some(self.instrument(&r.instrument)?)
        };
        let orders = self.gateway.open_orders(inst.as_ref());
        Ok(Response::new(pb::ListOpenOrdersResponse {
            orders: orders.iter().map(order_pb).collect(),
        }))
    }

    async fn close_positions(
        &self,
        r: Request<pb::ClosePositionsRequest>,
    ) -> Result<Response<pb::ClosePositionsResponse>, Status> {
        let r = r.into_inner();
        if !r.confirm {
            return Err(Status::failed_precondition(
                "close_positions sells holdings at market; set confirm=true to do it",
            ));
        }
        let list = self.instruments(&r.instruments)?;
        let orders = self
            .gateway
            .close_positions(&list)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::ClosePositionsResponse {
            orders: orders.iter().map(order_pb).collect(),
        }))
    }

    type StreamQuotesStream = QuoteStream;

    async fn stream_quotes(
        &self,
        r: Request<pb::StreamQuotesRequest>,
    ) -> Result<Response<Self::StreamQuotesStream>, Status> {
        let wanted = self.instruments(&r.into_inner().instruments)?;
        let rx = self.gateway.subscribe_quotes();
        let stop = self.gateway.shutdown_token().cancelled_owned();
        let quotes =
            futures::StreamExt::take_until(tokio_stream::wrappers::BroadcastStream::new(rx), stop);
        let stream = quotes.filter_map(move |q| {
            // A lagging client skips quotes rather than slowing the gateway down.
            let q = q.ok()?;
            if !wanted.is_empty() && !wanted.contains(&q.instrument) {
                return None;
            }
            Some(Ok(pb::QuoteUpdate {
                instrument: q.instrument.pair(),
                bid: q.bid.to_string(),
                bid_size: q.bid_size.to_string(),
                ask: q.ask.to_string(),
                ask_size: q.ask_size.to_string(),
                ts_ms: q.ts_ms,
            }))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

use tokio_stream::StreamExt as _;
