//! gekko's gRPC contracts, generated from `proto/gekko/v1` at build time.
//!
//! `proto/` is the one source of truth; this crate compiles it (with protox, so no
//! `protoc` is needed), exposes the descriptor set that servers hand to reflection, and
//! holds the conversions between protobuf messages and gekko's core types ([`convert`]),
//! so every server and client (gateways, the MCP server, the CLI, the health aggregator)
//! reads and writes the wire the same way.

pub mod convert;

/// Version 1 of the API.
#[allow(missing_docs, clippy::pedantic, missing_debug_implementations)]
pub mod v1 {
    tonic::include_proto!("gekko.v1");
}

/// The encoded `FileDescriptorSet` of every gekko proto, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/gekko_descriptor.bin"));
