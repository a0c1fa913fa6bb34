//! The one error type of `gekko-runtime`.
//!
//! Everything this crate does can fail only at process set-up (installing globals, binding
//! servers) or while a server runs, so the variants name the step that failed and keep the
//! underlying error as their `source` rather than flattening it into a string. The display
//! text deliberately does not repeat the source: callers printing the chain (`anyhow`'s
//! `{:#}`, `tracing`'s error fields) would otherwise see it twice.

/// An error from setting up or running process plumbing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The log filter directive (from `RUST_LOG` or the configuration) does not parse.
    #[error("invalid log filter directive {directive:?}")]
    LogFilter {
        /// The directive that was rejected.
        directive: String,
        /// Why `tracing-subscriber` rejected it.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },

    /// A global tracing subscriber is already installed (for example `telemetry::init`
    /// was called twice).
    #[error("a global tracing subscriber is already installed")]
    SubscriberAlreadySet(#[source] tracing_subscriber::util::TryInitError),

    /// OTLP export was requested but there is no Tokio runtime to build the gRPC exporter on.
    #[error("OTLP trace export needs a Tokio runtime; call telemetry::init inside one")]
    NoTokioRuntime,

    /// The OTLP span exporter could not be built (for example an invalid endpoint URL).
    #[error("failed to build the OTLP span exporter")]
    OtlpExporter(#[source] opentelemetry_otlp::ExporterBuildError),

    /// The tracer provider did not shut down cleanly; some spans may not have been exported.
    #[error("failed to flush and shut down the tracer provider")]
    TracerShutdown(#[source] opentelemetry_sdk::error::OTelSdkError),

    /// The Prometheus recorder could not be built or installed (usually because another
    /// global `metrics` recorder was installed first).
    #[error("failed to install the Prometheus metrics recorder")]
    Prometheus(#[source] metrics_exporter_prometheus::BuildError),

    /// The operational HTTP server failed while accepting or serving connections.
    #[error("the HTTP server failed")]
    Http(#[source] std::io::Error),

    /// The gRPC server failed while accepting or serving connections.
    #[error("the gRPC server failed")]
    Grpc(#[source] tonic::transport::Error),

    /// A file descriptor set handed to gRPC reflection does not decode.
    #[error("invalid file descriptor set for gRPC reflection")]
    Reflection(#[source] tonic_reflection::server::Error),
}
