//! The admin API of this simulator: the harness's generic `/sim/admin/` routes over
//! [`super::state::Shared`].
//!
//! Nothing here is Coinbase-specific, which is the point: the routes and their JSON
//! shapes are documented in [`crate::harness::admin`], and this simulator only supplies
//! its [`crate::harness::AdminControl`] implementation (in `state.rs`). The module stays
//! so the protocol's file list still shows where its admin surface comes from.

pub(crate) use crate::harness::admin::router;
