//! `gekko.v1.InferenceService` over the shared batcher.
//!
//! Input is validated before it is queued: a row with the wrong number of values or a
//! non-finite value is `INVALID_ARGUMENT` naming the row and the problem; an empty request
//! is `INVALID_ARGUMENT`; a full queue is `RESOURCE_EXHAUSTED`.

use std::time::Instant;

use gekko_proto::v1 as pb;
use gekko_proto::v1::inference_service_server::InferenceService;
use tonic::{Request, Response, Status};

use crate::Inference;

/// Largest number of rows one `Predict` call may carry.
pub const MAX_ROWS: usize = 65_536;

/// The gRPC face of [`Inference`].
#[derive(Debug, Clone)]
pub struct InferenceGrpc {
    svc: Inference,
}

impl InferenceGrpc {
    /// Wraps a running service.
    #[must_use]
    pub fn new(svc: Inference) -> Self {
        Self { svc }
    }

    /// The tonic server.
    #[must_use]
    pub fn into_server(self) -> pb::inference_service_server::InferenceServiceServer<Self> {
        pb::inference_service_server::InferenceServiceServer::new(self)
            .max_decoding_message_size(64 * 1024 * 1024)
    }
}

fn validate(rows: &[pb::FeatureRow], input_len: usize) -> Result<(), Status> {
    if rows.is_empty() {
        return Err(Status::invalid_argument(
            "rows: at least one feature row is required",
        ));
    }
    if rows.len() > MAX_ROWS {
        return Err(Status::invalid_argument(format!(
            "rows: {} rows exceed the limit of {MAX_ROWS}",
            rows.len()
        )));
    }
    for (i, r) in rows.iter().enumerate() {
        if r.values.len() != input_len {
            return Err(Status::invalid_argument(format!(
                "rows[{i}]: {} values, the model expects {input_len}",
                r.values.len()
            )));
        }
        if let Some(j) = r.values.iter().position(|v| !v.is_finite()) {
            return Err(Status::invalid_argument(format!(
                "rows[{i}].values[{j}]: {} is not a finite number",
                r.values[j]
            )));
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl InferenceService for InferenceGrpc {
    async fn predict(
        &self,
        request: Request<pb::PredictRequest>,
    ) -> Result<Response<pb::PredictResponse>, Status> {
        let started = Instant::now();
        let rows = request.into_inner().rows;
        let input_len = self.svc.registry.current().input_len();
        validate(&rows, input_len)?;
        let scored = self
            .svc
            .batcher
            .predict_many(rows.into_iter().map(|r| r.values).collect())
            .await
            .map_err(|e| {
                if e.is_retryable() {
                    Status::resource_exhausted(e.to_string())
                } else {
                    Status::invalid_argument(e.to_string())
                }
            })?;
        let (model, version) = scored
            .first()
            .map(|s| (s.model.clone(), s.version))
            .unwrap_or_default();
        let predictions = scored
            .iter()
            .map(|s| pb::PredictionMsg {
                direction: if s.prediction.p_up >= 0.5 {
                    pb::Direction::Up as i32
                } else {
                    pb::Direction::Down as i32
                },
                p_up: s.prediction.p_up,
                confidence: s.prediction.confidence,
            })
            .collect();
        Ok(Response::new(pb::PredictResponse {
            predictions,
            model,
            version,
            latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        }))
    }

    async fn model_info(
        &self,
        _r: Request<pb::ModelInfoRequest>,
    ) -> Result<Response<pb::ModelInfoResponse>, Status> {
        let m = self.svc.registry.current();
        let meta = m.meta();
        let d = &self.svc.device;
        Ok(Response::new(pb::ModelInfoResponse {
            model: meta.name.clone(),
            version: meta.version,
            window: u32::try_from(meta.window).unwrap_or(u32::MAX),
            horizon: u32::try_from(meta.horizon).unwrap_or(u32::MAX),
            input_len: u32::try_from(m.input_len()).unwrap_or(u32::MAX),
            dtype: format!("{:?}", m.dtype()).to_lowercase(),
            device: d.kind.to_owned(),
            device_name: d.name.clone(),
            device_reason: d.reason.clone(),
            fallback: d.fallback,
            heldout_hit_rate: f64::from(meta.train.heldout_hit_rate),
            heldout_loss: f64::from(meta.train.heldout_loss),
        }))
    }

    async fn latest_signals(
        &self,
        r: Request<pb::LatestSignalsRequest>,
    ) -> Result<Response<pb::LatestSignalsResponse>, Status> {
        let r = r.into_inner();
        let wanted: Vec<(Option<String>, String)> = r
            .instruments
            .iter()
            .map(|i| match i.split_once(':') {
                Some((venue, pair)) => (Some(venue.to_owned()), pair.to_owned()),
                None => (None, i.clone()),
            })
            .collect();
        let mut signals: Vec<gekko_core::Signal> = gekko_core::sync::lock(&self.svc.latest)
            .values()
            .filter(|s| {
                wanted.is_empty()
                    || wanted.iter().any(|(venue, pair)| {
                        *pair == s.instrument.pair()
                            && venue
                                .as_deref()
                                .is_none_or(|v| v == s.instrument.venue.as_str())
                    })
            })
            .cloned()
            .collect();
        signals.sort_by_key(|s| std::cmp::Reverse(s.quote_ts_ms));
        if r.limit > 0 {
            signals.truncate(r.limit as usize);
        }
        let signals = signals
            .into_iter()
            .map(|s| pb::SignalMsg {
                venue: s.instrument.venue.to_string(),
                instrument: s.instrument.pair(),
                model: s.model,
                version: s.version,
                direction: match s.direction {
                    gekko_core::Direction::Up => pb::Direction::Up as i32,
                    gekko_core::Direction::Down => pb::Direction::Down as i32,
                },
                p_up: s.p_up,
                confidence: s.confidence,
                horizon: s.horizon,
                quote_ts_ms: s.quote_ts_ms,
            })
            .collect();
        Ok(Response::new(pb::LatestSignalsResponse { signals }))
    }
}
