//! Integration tests for gekko-inference, in one binary so the (large) candle
//! dependency is linked once. CPU only, and fast: timing assertions use tokio's
//! paused clock where they can and generous bounds where they cannot.

mod batcher;
mod committed_model;
mod common;
mod registry;
mod train;
