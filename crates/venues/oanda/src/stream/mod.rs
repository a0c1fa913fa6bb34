//! The OANDA streams: prices and transactions as chunked NDJSON on the stream host,
//! parsed line by line, watched for silence, and caught up through `/changes` after a
//! reconnect so that no fill is missed.
//!
//! Filled in by the stream side of the crate; the REST side only calls what is exported
//! here.
