//! Request signature verification, exactly as Binance.US does it.
//!
//! The signed payload is `totalParams`: the raw query string concatenated *directly* with
//! the raw request body (no `&` in between), with the `signature` pair taken out. It is
//! rebuilt from the exact bytes on the wire, before any decoding, because that is what
//! the client signed; re-encoding decoded parameters would accept requests the venue
//! rejects and vice versa. The official vectors from the reference (body only, query
//! only, and the mixed `...timeInForce=GTCquantity=1...` case) are unit tests below.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::config::SimKeyAuth;
use super::error::ApiError;

/// `totalParams` with the `signature` pair removed, and the raw (still URL-encoded)
/// signature value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedPayload {
    /// The bytes the client signed.
    pub payload: String,
    /// The `signature` value as sent (possibly percent-encoded).
    pub signature: Option<String>,
}

/// Splits one part (query string or body) into the part without any `signature=` pair and
/// the signature value. Pairs are split on `&` and joined back with `&`, so every other
/// byte, including empty segments, is preserved exactly.
fn strip_signature(part: &str) -> (String, Option<String>) {
    if part.is_empty() {
        return (String::new(), None);
    }
    let mut kept = Vec::new();
    let mut sig = None;
    for pair in part.split('&') {
        match pair.strip_prefix("signature=") {
            Some(v) if sig.is_none() => sig = Some(v.to_owned()),
            _ => kept.push(pair),
        }
    }
    (kept.join("&"), sig)
}

/// Builds the signed payload from the raw query string and raw body.
#[must_use]
pub(crate) fn signed_payload(raw_query: &str, raw_body: &str) -> SignedPayload {
    let (q, q_sig) = strip_signature(raw_query);
    let (b, b_sig) = strip_signature(raw_body);
    SignedPayload {
        payload: format!("{q}{b}"),
        signature: q_sig.or(b_sig),
    }
}

/// Percent-decodes a signature value (`+` is kept: base64 signatures must arrive
/// percent-encoded, and hex never contains it).
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// HMAC-SHA256 of `payload` with `secret`, lowercase hex: what a client must send.
#[must_use]
pub fn hmac_hex(secret: &str, payload: &str) -> String {
    // new_from_slice accepts keys of any length for HMAC; the error arm is unreachable in
    // practice but is handled instead of unwrapped.
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(payload.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Verifies `signature` (raw, as sent) over `payload` for a key.
///
/// # Errors
/// -1022 when the signature is malformed or does not verify.
pub(crate) fn verify(auth: &SimKeyAuth, payload: &str, signature: &str) -> Result<(), ApiError> {
    let decoded = percent_decode(signature).ok_or_else(ApiError::invalid_signature)?;
    match auth {
        SimKeyAuth::Hmac { secret } => {
            // hex::decode accepts both cases: the venue compares case-insensitively.
            let sig = hex::decode(&decoded).map_err(|_| ApiError::invalid_signature())?;
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .map_err(|_| ApiError::invalid_signature())?;
            mac.update(payload.as_bytes());
            // verify_slice is constant-time.
            mac.verify_slice(&sig)
                .map_err(|_| ApiError::invalid_signature())
        }
        SimKeyAuth::Ed25519 { public_key } => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&decoded)
                .map_err(|_| ApiError::invalid_signature())?;
            let sig = ed25519_dalek::Signature::from_slice(&raw)
                .map_err(|_| ApiError::invalid_signature())?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(public_key)
                .map_err(|_| ApiError::invalid_signature())?;
            key.verify_strict(payload.as_bytes(), &sig)
                .map_err(|_| ApiError::invalid_signature())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
    const FULL: &str = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
    const SIG_FULL: &str = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71";
    const SIG_MIXED: &str = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77";

    fn auth() -> SimKeyAuth {
        SimKeyAuth::Hmac {
            secret: SECRET.into(),
        }
    }

    fn check(query: &str, body: &str) -> Result<(), ApiError> {
        let sp = signed_payload(query, body);
        let sig = sp
            .signature
            .ok_or_else(|| ApiError::mandatory("signature"))?;
        verify(&auth(), &sp.payload, &sig)
    }

    #[test]
    fn official_vector_body_only_is_accepted() {
        let body = format!("{FULL}&signature={SIG_FULL}");
        assert_eq!(check("", &body), Ok(()));
    }

    #[test]
    fn official_vector_query_only_is_accepted() {
        let query = format!("{FULL}&signature={SIG_FULL}");
        assert_eq!(check(&query, ""), Ok(()));
    }

    #[test]
    fn official_vector_mixed_query_and_body_is_accepted() {
        let query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC";
        let body = format!(
            "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature={SIG_MIXED}"
        );
        let sp = signed_payload(query, &body);
        assert_eq!(
            sp.payload,
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTCquantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
        );
        assert_eq!(check(query, &body), Ok(()));
    }

    #[test]
    fn uppercase_hex_signature_is_accepted() {
        let body = format!("{FULL}&signature={}", SIG_FULL.to_uppercase());
        assert_eq!(check("", &body), Ok(()));
    }

    #[test]
    fn derived_vectors_match() {
        for (payload, sig) in [
            (
                "timestamp=1499827319559",
                "2222d49722f6af5da13f6da6bfc0d7de19ca2815ebc98bbc49e4942268472f3f",
            ),
            (
                "symbol=BTCUSD&orderId=12345&recvWindow=5000&timestamp=1499827319559",
                "0269a4caf922efea558771975c58f52976d2f51a3dc774763027f10902ec7cfe",
            ),
        ] {
            assert_eq!(hmac_hex(SECRET, payload), sig);
        }
        assert_eq!(hmac_hex(SECRET, FULL), SIG_FULL);
    }

    #[test]
    fn tampered_requests_are_rejected_with_1022() {
        // One changed parameter value.
        let body = format!(
            "{}&signature={SIG_FULL}",
            FULL.replace("quantity=1", "quantity=2")
        );
        let err = check("", &body).expect_err("tampered payload must fail");
        assert_eq!(err.code, -1022);
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
        // One flipped signature nibble.
        let bad_sig = format!("{}0", &SIG_FULL[..63]);
        let err = check("", &format!("{FULL}&signature={bad_sig}")).expect_err("bad sig");
        assert_eq!(err.code, -1022);
        // Mixed example with an `&` inserted between the parts (a common client bug).
        let err = check(
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&",
            &format!(
                "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature={SIG_MIXED}"
            ),
        )
        .expect_err("inserted & must fail");
        assert_eq!(err.code, -1022);
        // Not hex at all.
        let err = check("", &format!("{FULL}&signature=zz%ZZ")).expect_err("garbage");
        assert_eq!(err.code, -1022);
    }

    #[test]
    fn signature_first_is_stripped_too() {
        let sp = signed_payload(&format!("signature={SIG_FULL}&{FULL}"), "");
        assert_eq!(sp.payload, FULL);
        assert_eq!(sp.signature.as_deref(), Some(SIG_FULL));
    }

    #[test]
    fn ed25519_signatures_verify_after_url_decoding() {
        use ed25519_dalek::Signer as _;
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let auth = SimKeyAuth::Ed25519 {
            public_key: sk.verifying_key().to_bytes(),
        };
        let sig =
            base64::engine::general_purpose::STANDARD.encode(sk.sign(FULL.as_bytes()).to_bytes());
        let encoded: String = form_urlencoded::byte_serialize(sig.as_bytes()).collect();
        let sp = signed_payload("", &format!("{FULL}&signature={encoded}"));
        let got = sp.signature.unwrap_or_default();
        assert_eq!(verify(&auth, &sp.payload, &got), Ok(()));
        let err = verify(&auth, &sp.payload.replace("BUY", "SELL"), &got).expect_err("tampered");
        assert_eq!(err.code, -1022);
    }
}
