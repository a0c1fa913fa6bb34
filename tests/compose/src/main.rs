//! `compose-order`: places one paper order through a gateway's published gRPC port and
//! checks what the gateway answers, for `tests/compose/e2e.sh`.
//!
//! Debian has no `grpcurl` and the `gekko` CLI has no order command, so the compose
//! end-to-end test needs a client of its own; this is the smallest honest one: the
//! workspace's generated `GatewayService` client, nothing re-implemented.
//!
//! It sends a market order with a client order id the caller names, waits until the
//! gateway reports the order acknowledged by the venue (a venue order id and a status
//! past `IN_FLIGHT`), then sends the **same** request again and checks that the answer
//! is the same order (the gateway's idempotency across the compose network). It prints
//! one line, `venue client_order_id venue_order_id status filled_qty`, and exits 0; any
//! failure is exit 1 with the reason on stderr.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use tonic::transport::Channel;

/// Places one paper market order and checks the gateway's answers.
#[derive(Debug, Parser)]
#[command(name = "compose-order")]
struct Args {
    /// The gateway's gRPC address, e.g. http://127.0.0.1:50051.
    #[arg(long)]
    grpc: String,
    /// The venue: binanceus, coinbase or oanda.
    #[arg(long)]
    venue: String,
    /// The canonical pair, e.g. BTC-USD.
    #[arg(long)]
    instrument: String,
    /// The quantity (decimal string).
    #[arg(long)]
    qty: String,
    /// The client order id to place the order under.
    #[arg(long)]
    client_order_id: String,
    /// How long to wait for the venue's acknowledgement, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout_s: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("compose-order {}: {e:#}", args.venue);
            std::process::ExitCode::FAILURE
        }
    }
}

/// The order's status as the proto names it, for the printed line and the errors.
fn status_name(order: &pb::OrderMsg) -> &'static str {
    pb::OrderStatus::try_from(order.status).map_or("UNKNOWN", |s| s.as_str_name())
}

async fn run(args: &Args) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    let channel = Channel::from_shared(args.grpc.clone())
        .context("--grpc is not a URL")?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.grpc))?;
    let mut client = GatewayServiceClient::new(channel);
    let request = pb::PlaceOrderRequest {
        instrument: args.instrument.clone(),
        side: pb::Side::Buy.into(),
        r#type: pb::OrderType::Market.into(),
        qty: args.qty.clone(),
        client_order_id: args.client_order_id.clone(),
        venue: args.venue.clone(),
        ..Default::default()
    };
    let placed = client
        .place_order(request.clone())
        .await
        .context("PlaceOrder")?
        .into_inner()
        .order
        .context("PlaceOrder answered without an order")?;
    if placed.client_order_id != args.client_order_id {
        bail!(
            "PlaceOrder answered for client id {:?}, not {:?}",
            placed.client_order_id,
            args.client_order_id
        );
    }
    if placed.status == i32::from(pb::OrderStatus::Rejected) {
        bail!("the venue rejected the order: {}", placed.reject_reason);
    }

    // Poll until the venue has acknowledged it: a venue order id and a status past
    // PENDING_NEW/IN_FLIGHT (the submit may be resolved asynchronously).
    let acked = loop {
        let order = client
            .get_order(pb::GetOrderRequest {
                instrument: args.instrument.clone(),
                client_order_id: args.client_order_id.clone(),
                venue: args.venue.clone(),
            })
            .await
            .context("GetOrder")?
            .into_inner()
            .order
            .context("GetOrder answered without an order")?;
        let pending = order.status == i32::from(pb::OrderStatus::PendingNew)
            || order.status == i32::from(pb::OrderStatus::InFlight);
        if order.status == i32::from(pb::OrderStatus::Rejected) {
            bail!("the venue rejected the order: {}", order.reject_reason);
        }
        if !pending && !order.venue_order_id.is_empty() {
            break order;
        }
        if Instant::now() > deadline {
            bail!(
                "not acknowledged within {} s: status {}, venue order id {:?}",
                args.timeout_s,
                status_name(&order),
                order.venue_order_id
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // The same request again must return the same order, not place a second one.
    let again = client
        .place_order(request)
        .await
        .context("PlaceOrder (resent)")?
        .into_inner()
        .order
        .context("PlaceOrder (resent) answered without an order")?;
    if again.venue_order_id != acked.venue_order_id {
        bail!(
            "resending client id {} gave venue order {:?}, the first was {:?}",
            args.client_order_id,
            again.venue_order_id,
            acked.venue_order_id
        );
    }
    Ok(format!(
        "{} {} {} {} {}",
        args.venue,
        acked.client_order_id,
        acked.venue_order_id,
        status_name(&acked),
        acked.filled_qty
    ))
}
