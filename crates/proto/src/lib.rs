//! gekko's gRPC contracts, generated from `proto/gekko/v1` at build time.
//!
//! `proto/` is the one source of truth; this crate only compiles it (with protox, so no
//! `protoc` is needed) and exposes the descriptor set that servers hand to reflection.

#![allow(missing_docs, clippy::pedantic, missing_debug_implementations)]

/// Version 1 of the API.
pub mod v1 {
    tonic::include_proto!("gekko.v1");
}

/// The encoded `FileDescriptorSet` of every gekko proto, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/gekko_descriptor.bin"));
