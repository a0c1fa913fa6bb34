//! gekko's Coinbase signer against the Coinbase simulator, which verifies every JWT the
//! way the venue does with only the public key and was written independently of this
//! crate: the tokens gekko builds are accepted over real TLS, for both key types, and a
//! token signed for another request is refused.

use gekko_coinbase::{CdpJwtSigner, CdpKey, JwtAlgorithm};
use gekko_sim::coinbase::{SimApiKey, SimCoinbase, SimConfig};
use reqwest::StatusCode;

const ACCOUNTS: &str = "/api/v3/brokerage/accounts";

#[tokio::test]
async fn the_simulator_accepts_gekkos_tokens_for_both_key_types() {
    let keys = [
        ("organizations/org-1/apiKeys/ec-key", JwtAlgorithm::Es256),
        ("11111111-2222-3333-4444-555555555555", JwtAlgorithm::EdDsa),
    ];
    let keys: Vec<CdpKey> = keys
        .iter()
        .map(|(name, alg)| CdpKey::generate(name, *alg).expect("key"))
        .collect();
    let sim = SimCoinbase::start(SimConfig {
        api_keys: keys
            .iter()
            .map(|k| SimApiKey {
                name: k.name().to_owned(),
                public_key_pem: k.public_key_pem(),
            })
            .collect(),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let pem = sim.cert_pem.clone().expect("a generated certificate");
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).expect("cert")])
        .build()
        .unwrap();
    let host = sim.rest_url.trim_start_matches("https://").to_owned();
    for key in keys {
        let name = key.name().to_owned();
        let signer = CdpJwtSigner::new(key);
        let get = |token: String, path: &str| {
            http.get(format!("{}{path}", sim.rest_url))
                .bearer_auth(token)
                .send()
        };
        // A fresh token per request, as the gateway sends them.
        for _ in 0..2 {
            let token = signer.rest_token("GET", &host, ACCOUNTS).unwrap();
            let resp = get(token, ACCOUNTS).await.unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::OK,
                "{name}: {:?}",
                resp.text().await
            );
        }
        // Signed for the product list, sent to the accounts: refused.
        let other = signer
            .rest_token("GET", &host, "/api/v3/brokerage/products")
            .unwrap();
        let resp = get(other, ACCOUNTS).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{name}");
        // The query is not part of the signed uri, and the simulator agrees.
        let token = signer.rest_token("GET", &host, ACCOUNTS).unwrap();
        let resp = get(token, &format!("{ACCOUNTS}?limit=1")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{name}: query");
    }
    sim.shutdown().await;
}
