//! The cost of authenticating one Coinbase request: building and signing a REST JWT
//! (nonce, header and claims JSON, base64url, signature), next to the bare signature
//! operation of the same key over a signing input of the same length, in the same run.
//! The target is a whole token under 1.3× the raw signature. Kept short (small
//! samples, 1 s measurement) so a full run takes seconds.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gekko_coinbase::auth::{CdpJwtSigner, CdpKey};

const NAME: &str = "organizations/test-organization/apiKeys/test-api-key";
const EC_SECRET: &str = include_str!("../test_data/ec_p256_sec1.pem");
const ED_SECRET: &str = include_str!("../test_data/ed25519_64.b64");
const HOST: &str = "api.coinbase.com";
const PATH: &str = "/api/v3/brokerage/orders/historical/batch";

fn jwt(c: &mut Criterion) {
    for (alg, secret) in [("es256", EC_SECRET), ("eddsa", ED_SECRET)] {
        let Ok(key) = CdpKey::parse(NAME, secret) else {
            eprintln!("skipping {alg}: fixture key does not parse");
            continue;
        };
        let signer = CdpJwtSigner::new(key);
        // A signing input as long as a real token's `header.claims` part.
        let sample = signer.rest_token("GET", HOST, PATH).unwrap_or_default();
        let input = sample
            .rsplit_once('.')
            .map_or(sample.as_str(), |(a, _)| a)
            .to_owned();

        let mut g = c.benchmark_group(format!("jwt_{alg}"));
        g.bench_function("rest_token", |b| {
            b.iter(|| signer.rest_token(black_box("GET"), black_box(HOST), black_box(PATH)));
        });
        g.bench_function("raw_sign", |b| {
            b.iter(|| signer.key().sign(black_box(input.as_bytes())));
        });
        g.finish();
    }
}

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = quick();
    targets = jwt
}
criterion_main!(benches);
