//! Validation through the public API: defaults, reporting every problem at once,
//! cross-field rules, deprecated names, credentials and secret redaction.

use std::collections::BTreeMap;
use std::time::Duration;

use gekko_config::{
    ConfigErrors, DevicePreference, GekkoConfig, Loaded, LogFormat, Pair, VenueId, from_vars,
};
use rust_decimal_macros::dec;
use secrecy::ExposeSecret;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn ok(pairs: &[(&str, &str)]) -> Loaded {
    match from_vars(&vars(pairs)) {
        Ok(loaded) => loaded,
        Err(e) => panic!("expected valid config, got:\n{e}"),
    }
}

fn err(pairs: &[(&str, &str)]) -> ConfigErrors {
    match from_vars(&vars(pairs)) {
        Ok(loaded) => panic!("expected problems, got {:?}", loaded.config),
        Err(e) => e,
    }
}

fn pair(s: &str) -> Pair {
    s.parse().expect("valid pair")
}

#[test]
fn defaults_load_from_an_empty_map() {
    let loaded = ok(&[]);
    assert!(loaded.warnings.is_empty());
    let c = loaded.config;
    assert_eq!(format!("{c:?}"), format!("{:?}", GekkoConfig::default()));
    assert_eq!(c.redis_url, None);
    assert!(c.trading_api_endpoints.is_empty());
    assert_eq!(c.rate_limit(VenueId::BinanceUs).to_string(), "1200/1m");
    assert_eq!(c.rate_limit(VenueId::Coinbase).to_string(), "30/1s");
    assert_eq!(c.rate_limit(VenueId::Oanda).to_string(), "100/1s");
    // Crypto on every venue that lists it, and two FX pairs for OANDA, so that gekko up
    // with no config shows all three venues.
    assert_eq!(
        c.supported_trading_pairs,
        vec![
            pair("BTC-USD"),
            pair("ETH-USD"),
            pair("oanda:EUR-USD"),
            pair("oanda:USD-JPY")
        ]
    );
    let pairs = |v| {
        c.instruments_for(v)
            .iter()
            .map(gekko_core::InstrumentId::pair)
            .collect::<Vec<_>>()
    };
    assert_eq!(pairs(VenueId::BinanceUs), ["BTC-USD", "ETH-USD"]);
    assert_eq!(pairs(VenueId::Coinbase), ["BTC-USD", "ETH-USD"]);
    assert_eq!(
        pairs(VenueId::Oanda),
        ["BTC-USD", "ETH-USD", "EUR-USD", "USD-JPY"]
    );
    assert!(c.position_limits.is_empty());
    assert_eq!(c.ml_model_endpoints["direction"], "models");
    assert_eq!(c.prediction_parameters.window, 32);
    assert!(!c.prediction_parameters.window_set && !c.prediction_parameters.horizon_set);
    assert_eq!(
        c.prediction_parameters.interval,
        Duration::ZERO,
        "every quote"
    );
    assert_eq!(
        c.model_update_frequency("direction"),
        Duration::from_mins(5)
    );
    assert_eq!(c.confidence_thresholds["direction"], dec!(0.55));
    assert_eq!(c.system_performance.batch_max_size, 64);
    assert_eq!(
        c.system_performance.batch_max_wait,
        Duration::from_millis(2)
    );
    assert_eq!(c.resource_allocation.device, DevicePreference::Auto);
    assert_eq!(c.monitoring.http_addr.to_string(), "127.0.0.1:9464");
    assert_eq!(c.monitoring.grpc_addr.to_string(), "127.0.0.1:50051");
    assert_eq!(c.monitoring.log_format, LogFormat::Pretty);
    assert_eq!(c.monitoring.log_level, "info");
    assert!(!c.backup.enabled);
    assert_eq!(c.encryption.algorithm, "xchacha20poly1305");
    assert!(c.access_control.grpc_auth_token.is_none());
    assert!(c.audit_logging.enabled);
    assert_eq!(c.compliance.max_order_notional, dec!(100000));
    assert!(c.compliance.trading_enabled);
    for venue in VenueId::ALL {
        assert!(c.paper_mode(venue));
    }
}

#[test]
fn a_full_valid_config_parses() {
    let c = ok(&[
        ("REDIS_URL", "rediss://default:pw@redis:6380/1"),
        ("TRADING_API_ENDPOINTS", "coinbase=http://127.0.0.1:8081, oanda=https://api-fxpractice.oanda.com"),
        ("TRADING_RATE_LIMITS", "coinbase=10/1s"),
        ("SUPPORTED_TRADING_PAIRS", "BTC-USD,ETH-USD,EUR-USD"),
        ("POSITION_LIMITS", "BTC-USD=2,ETH-USD=20.5"),
        ("ML_MODEL_ENDPOINTS", "direction=models,vol=http://127.0.0.1:8500"),
        ("PREDICTION_PARAMETERS", "window=64,horizon=4,interval=500ms"),
        ("MODEL_UPDATE_FREQUENCIES", "vol=1m"),
        ("CONFIDENCE_THRESHOLDS", "direction=0.6,vol=1"),
        ("SYSTEM_PERFORMANCE_PARAMS", "batch_max_size=128,batch_max_wait=0ms,order_timeout=3s"),
        ("RESOURCE_ALLOCATION_SETTINGS", "device=cuda,gpu_memory_budget_mb=8192,cpu_threads=4"),
        ("MONITORING_CONFIGURATIONS", "http_addr=0.0.0.0:9464,log_format=json,log_level=info;gekko_bus=debug"),
        ("BACKUP_SETTINGS", "enabled=yes,dir=/var/lib/gekko/backups,interval=6h,retention=3"),
        ("ENCRYPTION_SETTINGS", "key_file=/run/secrets/k"),
        ("ACCESS_CONTROL_CONFIG", "grpc_auth_token=0123456789abcdef,read_only=1,allowed_clients=legacy"),
        ("AUDIT_LOGGING_SETTINGS", "enabled=false,retention_days=90"),
        ("COMPLIANCE_SETTINGS", "max_order_notional=5000,max_daily_notional=5000,restricted_pairs=ETH-USD,trading_enabled=no"),
        ("OANDA_API_TOKEN", "tok"),
        ("OANDA_ACCOUNT_ID", "101-001-1234567-001"),
    ])
    .config;
    assert_eq!(
        c.api_endpoint(VenueId::Coinbase),
        Some("http://127.0.0.1:8081")
    );
    assert_eq!(c.rate_limit(VenueId::Coinbase).to_string(), "10/1s");
    assert_eq!(c.rate_limit(VenueId::BinanceUs).to_string(), "1200/1m");
    assert_eq!(c.position_limits[&pair("ETH-USD")], dec!(20.5));
    assert_eq!(c.prediction_parameters.interval, Duration::from_millis(500));
    assert!(c.prediction_parameters.window_set && c.prediction_parameters.horizon_set);
    assert_eq!(
        (
            c.prediction_parameters.window,
            c.prediction_parameters.horizon
        ),
        (64, 4)
    );
    assert_eq!(c.model_update_frequency("vol"), Duration::from_mins(1));
    assert_eq!(
        c.model_update_frequency("direction"),
        Duration::from_mins(5)
    );
    assert_eq!(c.confidence_thresholds["vol"], dec!(1));
    assert_eq!(c.system_performance.batch_max_wait, Duration::ZERO);
    assert_eq!(c.resource_allocation.device, DevicePreference::Cuda);
    assert_eq!(c.monitoring.log_level, "info,gekko_bus=debug");
    assert!(c.backup.enabled);
    assert!(c.access_control.read_only);
    assert_eq!(c.access_control.allowed_clients, ["legacy"]);
    assert_eq!(
        c.access_control
            .grpc_auth_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        Some("0123456789abcdef".to_owned())
    );
    assert!(!c.tradable(&pair("ETH-USD")));
    assert!(c.tradable(&pair("BTC-USD")));
    assert!(!c.compliance.trading_enabled);
    assert!(!c.paper_mode(VenueId::Oanda));
    assert!(c.paper_mode(VenueId::Coinbase));
}

#[test]
fn many_bad_variables_report_every_problem() {
    let bad = [
        ("REDIS_URL", "http://localhost:6379"),
        ("TRADING_API_ENDPOINTS", "kraken=https://api.kraken.com"),
        ("TRADING_RATE_LIMITS", "coinbase=0/1s"),
        ("SUPPORTED_TRADING_PAIRS", "btc-usd"),
        ("ML_MODEL_ENDPOINTS", "direction=ftp://models"),
        ("PREDICTION_PARAMETERS", "window=1"),
        ("SYSTEM_PERFORMANCE_PARAMS", "batch_max_wait=2s"),
        ("RESOURCE_ALLOCATION_SETTINGS", "device=tpu"),
        ("MONITORING_CONFIGURATIONS", "log_level=loud"),
        ("BACKUP_SETTINGS", "interval=30s"),
        ("ENCRYPTION_SETTINGS", "algorithm=aes"),
        ("ACCESS_CONTROL_CONFIG", "read_only=maybe"),
        ("AUDIT_LOGGING_SETTINGS", "retention_days=0"),
        ("COMPLIANCE_SETTINGS", "max_order_notional=-1"),
        ("BINANCEUS_API_KEY", "k"),
    ];
    let errors = err(&bad);
    assert_eq!(errors.problems.len(), bad.len(), "{errors}");
    let text = errors.to_string();
    assert_eq!(text.lines().count(), bad.len());
    for (name, _) in &bad {
        if *name == "BINANCEUS_API_KEY" {
            // The lone half is reported under the variable that is missing.
            assert!(errors.mentions("BINANCEUS_API_SECRET"), "{text}");
        } else {
            assert!(errors.mentions(name), "{name} not reported:\n{text}");
        }
    }
    for line in text.lines() {
        assert!(line.contains(": ") && line.contains("(expected "), "{line}");
    }
}

#[test]
fn several_problems_in_one_variable_are_separate_lines() {
    let e = err(&[(
        "SYSTEM_PERFORMANCE_PARAMS",
        "batch_max_size=0,nope=1,order_timeout,batch_max_size=2",
    )]);
    // Out of range, unknown key, missing `=`, duplicate key.
    assert_eq!(e.problems.len(), 4, "{e}");
}

#[test]
fn position_limit_for_an_unsupported_pair_is_an_error() {
    let e = err(&[
        ("SUPPORTED_TRADING_PAIRS", "BTC-USD"),
        ("POSITION_LIMITS", "BTC-USD=1,ETH-USD=20"),
    ]);
    assert_eq!(e.problems.len(), 1, "{e}");
    assert_eq!(e.problems[0].variable, "POSITION_LIMITS");
    assert!(e.problems[0].problem.contains("ETH-USD"), "{e}");
}

#[test]
fn cross_field_rules() {
    let e = err(&[
        ("ML_MODEL_ENDPOINTS", "direction=models"),
        ("MODEL_UPDATE_FREQUENCIES", "ghost=1m"),
        ("CONFIDENCE_THRESHOLDS", "ghost=0.5"),
        ("PREDICTION_PARAMETERS", "window=8,horizon=9"),
        (
            "MONITORING_CONFIGURATIONS",
            "http_addr=127.0.0.1:7000,grpc_addr=127.0.0.1:7000",
        ),
        ("BACKUP_SETTINGS", "enabled=true,dir="),
        (
            "ENCRYPTION_SETTINGS",
            "key=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff,key_file=/k",
        ),
        (
            "COMPLIANCE_SETTINGS",
            "max_order_notional=10,max_daily_notional=5,restricted_pairs=XRP-USD",
        ),
    ]);
    for name in [
        "MODEL_UPDATE_FREQUENCIES",
        "CONFIDENCE_THRESHOLDS",
        "PREDICTION_PARAMETERS",
        "MONITORING_CONFIGURATIONS",
        "BACKUP_SETTINGS",
        "ENCRYPTION_SETTINGS",
    ] {
        assert!(e.mentions(name), "{name} missing:\n{e}");
    }
    let compliance = e
        .problems
        .iter()
        .filter(|p| p.variable == "COMPLIANCE_SETTINGS")
        .count();
    assert_eq!(compliance, 2, "{e}");
    assert_eq!(e.problems.len(), 8, "{e}");
}

#[test]
fn cross_field_checks_skip_invalid_inputs() {
    // The bad pair list is one problem; the limit is not blamed on it as well.
    let e = err(&[
        ("SUPPORTED_TRADING_PAIRS", "BTC-USD,eth-usd"),
        ("POSITION_LIMITS", "ETH-USD=1"),
    ]);
    assert_eq!(e.problems.len(), 1, "{e}");
    assert_eq!(e.problems[0].variable, "SUPPORTED_TRADING_PAIRS");
}

#[test]
fn duplicate_pairs_and_empty_lists_are_errors() {
    assert!(
        err(&[("SUPPORTED_TRADING_PAIRS", "BTC-USD,BTC-USD")]).mentions("SUPPORTED_TRADING_PAIRS")
    );
    assert!(err(&[("SUPPORTED_TRADING_PAIRS", ",,")]).mentions("SUPPORTED_TRADING_PAIRS"));
}

#[test]
fn confidence_default_follows_the_direction_model() {
    let c = ok(&[("ML_MODEL_ENDPOINTS", "vol=models/vol")]).config;
    assert!(c.confidence_thresholds.is_empty());
}

#[test]
fn blank_values_count_as_unset() {
    let c = ok(&[
        ("REDIS_URL", ""),
        ("SUPPORTED_TRADING_PAIRS", "   "),
        ("BINANCEUS_API_KEY", ""),
    ])
    .config;
    assert_eq!(c.redis_url, None);
    assert_eq!(
        c.supported_trading_pairs,
        GekkoConfig::default().supported_trading_pairs
    );
    assert!(c.paper_mode(VenueId::BinanceUs));
}

#[test]
fn deprecated_name_is_used_with_a_warning() {
    let loaded = ok(&[
        ("TRADING_PAIRS", "EUR-USD"),
        ("REDIS_URI", "redis://r:6379"),
    ]);
    assert_eq!(loaded.config.supported_trading_pairs, vec![pair("EUR-USD")]);
    assert_eq!(loaded.config.redis_url.as_deref(), Some("redis://r:6379"));
    assert_eq!(loaded.warnings.len(), 2);
    let text: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|w| w.contains("TRADING_PAIRS") && w.contains("SUPPORTED_TRADING_PAIRS"))
    );
    assert!(
        text.iter()
            .any(|w| w.contains("REDIS_URI") && w.contains("REDIS_URL"))
    );
}

#[test]
fn deprecated_name_is_ignored_when_the_new_one_is_set() {
    let loaded = ok(&[("REDIS_URI", "redis://old"), ("REDIS_URL", "redis://new")]);
    assert_eq!(loaded.config.redis_url.as_deref(), Some("redis://new"));
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].message.contains("ignored"));
}

#[test]
fn deprecated_credential_names_work_and_problems_name_what_was_set() {
    let loaded = ok(&[("BINANCE_US_API_KEY", "k"), ("BINANCE_US_API_SECRET", "s")]);
    assert!(!loaded.config.paper_mode(VenueId::BinanceUs));
    assert_eq!(loaded.warnings.len(), 2);

    let e = err(&[("BINANCE_US_API_KEY", "k")]);
    assert_eq!(e.problems.len(), 1);
    assert_eq!(e.problems[0].variable, "BINANCEUS_API_SECRET");
    assert!(e.problems[0].problem.contains("BINANCE_US_API_KEY"), "{e}");
}

#[test]
fn lone_credential_half_names_the_missing_variable() {
    let cases = [
        ("BINANCEUS_API_KEY", "BINANCEUS_API_SECRET"),
        ("BINANCEUS_API_SECRET", "BINANCEUS_API_KEY"),
        ("COINBASE_API_KEY_NAME", "COINBASE_API_SECRET"),
        ("COINBASE_API_SECRET", "COINBASE_API_KEY_NAME"),
        ("OANDA_API_TOKEN", "OANDA_ACCOUNT_ID"),
        ("OANDA_ACCOUNT_ID", "OANDA_API_TOKEN"),
    ];
    for (set, missing) in cases {
        let e = err(&[(set, "x")]);
        assert_eq!(e.problems.len(), 1, "{e}");
        assert_eq!(e.problems[0].variable, missing);
        assert!(
            e.to_string()
                .starts_with(&format!("{missing}: is not set but {set} is")),
            "{e}"
        );
    }
}

const SECRETS: [&str; 6] = [
    "binance-key-AAAA",
    "binance-secret-BBBB",
    "coinbase-pem-CCCC",
    "oanda-token-DDDD",
    "redis-password-EEEE",
    "grpc-token-FFFF-0123456789",
];
const KEY: &str = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

#[test]
fn debug_output_never_contains_secrets() {
    let loaded = ok(&[
        ("BINANCEUS_API_KEY", SECRETS[0]),
        ("BINANCEUS_API_SECRET", SECRETS[1]),
        ("COINBASE_API_KEY_NAME", "organizations/o/apiKeys/k"),
        ("COINBASE_API_SECRET", SECRETS[2]),
        ("OANDA_API_TOKEN", SECRETS[3]),
        ("OANDA_ACCOUNT_ID", "101-001-1234567-001"),
        (
            "REDIS_URL",
            &format!("redis://gekko:{}@redis:6379/0", SECRETS[4]),
        ),
        ("ENCRYPTION_SETTINGS", &format!("key={KEY}")),
        (
            "ACCESS_CONTROL_CONFIG",
            &format!("grpc_auth_token={}", SECRETS[5]),
        ),
        (
            "TRADING_API_ENDPOINTS",
            &format!("coinbase=https://u:{}@x", SECRETS[4]),
        ),
    ]);
    let debug = format!("{:?} {:#?}", loaded.config, loaded);
    for secret in SECRETS.iter().chain([&KEY]) {
        assert!(
            !debug.contains(secret),
            "{secret} leaked in Debug:\n{debug}"
        );
    }
    assert!(debug.contains("redis://gekko:***@redis:6379/0"), "{debug}");
    assert!(debug.contains("organizations/o/apiKeys/k"));
    // The values themselves are intact for the code that needs them.
    let c = &loaded.config;
    assert_eq!(
        c.encryption
            .key
            .as_ref()
            .map(|k| k.expose_secret().to_owned())
            .as_deref(),
        Some(KEY)
    );
    assert!(
        c.redis_url
            .as_deref()
            .is_some_and(|u| u.contains(SECRETS[4]))
    );
    for venue in VenueId::ALL {
        assert!(!c.paper_mode(venue));
    }
}

#[test]
fn problems_never_echo_secrets() {
    let e = err(&[
        ("ENCRYPTION_SETTINGS", "key=hunter2-not-hex"),
        (
            "ACCESS_CONTROL_CONFIG",
            "grpc_auth_token=hunter2,grpc_auth_tokenhunter2",
        ),
    ]);
    let text = e.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(e.problems.len(), 3, "{text}");
}

#[test]
fn malformed_url_entries_are_redacted() {
    let e = err(&[("TRADING_API_ENDPOINTS", "https://u:hunter2@host")]);
    let text = e.to_string();
    assert!(
        !text.contains("hunter2") && text.contains("u:***@host"),
        "{text}"
    );
}

#[test]
fn binanceus_key_type_selects_ed25519_and_rejects_unknown_types() {
    let ok = from_vars(&vars(&[
        ("BINANCEUS_API_KEY", "k"),
        ("BINANCEUS_API_SECRET", "s"),
        ("BINANCEUS_KEY_TYPE", "ed25519"),
    ]))
    .unwrap();
    let creds = ok.config.credentials.binanceus.unwrap();
    assert_eq!(creds.key_type, gekko_config::BinanceUsKeyType::Ed25519);
    let err = from_vars(&vars(&[("BINANCEUS_KEY_TYPE", "rsa")])).unwrap_err();
    assert!(err.mentions("BINANCEUS_KEY_TYPE"), "{err}");
}

#[test]
fn pairs_and_limits_may_be_venue_qualified() {
    let c = ok(&[
        ("SUPPORTED_TRADING_PAIRS", "BTC-USD,ETH-USD,oanda:EUR-USD"),
        (
            "POSITION_LIMITS",
            "BTC-USD=2,binanceus:BTC-USD=1,oanda:EUR-USD=1000",
        ),
        (
            "COMPLIANCE_SETTINGS",
            "max_order_notional=5000,max_daily_notional=50000,restricted_pairs=binanceus:ETH-USD",
        ),
    ])
    .config;
    let pairs = |v| {
        c.instruments_for(v)
            .iter()
            .map(gekko_core::InstrumentId::pair)
            .collect::<Vec<_>>()
    };
    // A plain pair means every venue; a qualified one only its venue.
    assert_eq!(pairs(VenueId::BinanceUs), ["BTC-USD", "ETH-USD"]);
    assert_eq!(pairs(VenueId::Oanda), ["BTC-USD", "ETH-USD", "EUR-USD"]);
    // A qualified limit overrides the plain one on its venue only.
    assert_eq!(
        c.position_limits_for(VenueId::BinanceUs)["BTC-USD"],
        dec!(1)
    );
    assert_eq!(c.position_limits_for(VenueId::Coinbase)["BTC-USD"], dec!(2));
    assert_eq!(c.position_limits_for(VenueId::Oanda)["EUR-USD"], dec!(1000));
    assert!(
        !c.position_limits_for(VenueId::Coinbase)
            .contains_key("EUR-USD")
    );
    assert_eq!(c.restricted_pairs_for(VenueId::BinanceUs), ["ETH-USD"]);
    assert!(c.restricted_pairs_for(VenueId::Coinbase).is_empty());
    assert_eq!(pair("binanceus:BTC-USD").to_string(), "binanceus:BTC-USD");
    assert!(!c.tradable(&pair("binanceus:ETH-USD")));
    assert!(c.tradable(&pair("coinbase:ETH-USD")));
}

#[test]
fn qualified_pairs_are_checked_like_plain_ones() {
    let e = err(&[
        ("SUPPORTED_TRADING_PAIRS", "kraken:BTC-USD,oanda:EUR-USD"),
        ("POSITION_LIMITS", "coinbase:EUR-USD=1"),
    ])
    .to_string();
    assert!(e.contains("SUPPORTED_TRADING_PAIRS"), "{e}");
    assert!(e.contains("kraken:BTC-USD"), "{e}");
    // A limit for a venue the qualified pair does not cover names the pair.
    let e = err(&[
        ("SUPPORTED_TRADING_PAIRS", "BTC-USD,oanda:EUR-USD"),
        ("POSITION_LIMITS", "coinbase:EUR-USD=1"),
    ])
    .to_string();
    assert!(
        e.contains("POSITION_LIMITS: coinbase:EUR-USD is not in SUPPORTED_TRADING_PAIRS"),
        "{e}"
    );
}

#[test]
fn a_fallback_endpoint_is_configurable() {
    let c = ok(&[(
        "TRADING_API_ENDPOINTS",
        "binanceus=http://127.0.0.1:9100,binanceus.fallback=http://127.0.0.1:9200",
    )])
    .config;
    assert_eq!(
        c.fallback_endpoint(VenueId::BinanceUs),
        Some("http://127.0.0.1:9200")
    );
    assert_eq!(c.fallback_endpoint(VenueId::Coinbase), None);
    let e = err(&[(
        "TRADING_API_ENDPOINTS",
        "binanceus=http://a:1,binanceus.fallback=http://a:1,coinbase.fallback=ftp://x",
    )])
    .to_string();
    assert!(
        e.contains("binanceus.fallback is the same URL as binanceus"),
        "{e}"
    );
    assert!(e.contains("coinbase"), "{e}");
}

#[test]
fn a_pair_restricted_plainly_and_per_venue_is_listed_once() {
    let c = ok(&[(
        "COMPLIANCE_SETTINGS",
        "max_order_notional=5000,max_daily_notional=50000,restricted_pairs=ETH-USD;binanceus:BTC-USD;binanceus:ETH-USD",
    )])
    .config;
    assert_eq!(
        c.restricted_pairs_for(VenueId::BinanceUs),
        ["BTC-USD", "ETH-USD"]
    );
    assert_eq!(c.restricted_pairs_for(VenueId::Coinbase), ["ETH-USD"]);
}

#[test]
fn coinbase_key_names_must_have_the_cdp_shape() {
    for good in [
        "organizations/test-organization/apiKeys/test-api-key",
        "9d4d3f6c-6a3b-4a5e-9a8e-0c2d5f1b7e21",
    ] {
        let loaded = ok(&[
            ("COINBASE_API_KEY_NAME", good),
            ("COINBASE_API_SECRET", "pem"),
        ]);
        let creds = loaded.config.credentials.coinbase.expect("credentials");
        assert_eq!(creds.key_name, good);
        assert_eq!(creds.api_secret.expose_secret(), "pem");
    }
    for bad in [
        "my-key",
        "organizations//apiKeys/k",
        "organizations/o/keys/k",
        "9d4d3f6c-6a3b-4a5e-9a8e-0c2d5f1b7e2",
        "organizations/o/apiKeys/k/extra",
    ] {
        let e = err(&[
            ("COINBASE_API_KEY_NAME", bad),
            ("COINBASE_API_SECRET", "SECRET-SENTINEL"),
        ]);
        assert_eq!(e.problems.len(), 1, "{e}");
        assert_eq!(e.problems[0].variable, "COINBASE_API_KEY_NAME");
        assert!(e.to_string().contains("not a CDP key name"), "{e}");
        assert!(!e.to_string().contains("SECRET-SENTINEL"), "{e}");
    }
}

#[test]
fn the_old_coinbase_secret_name_still_works_with_a_warning() {
    let loaded = ok(&[
        ("COINBASE_API_KEY_NAME", "organizations/o/apiKeys/k"),
        ("COINBASE_API_PRIVATE_KEY", "line1\\nline2"),
    ]);
    let creds = loaded.config.credentials.coinbase.expect("credentials");
    assert_eq!(creds.api_secret.expose_secret(), "line1\nline2");
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.message.contains("COINBASE_API_SECRET")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn user_stream_endpoints_and_the_tls_ca_file() {
    let dir = std::env::temp_dir().join(format!("gekko-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let loaded = ok(&[
        (
            "TRADING_API_ENDPOINTS",
            "coinbase=https://127.0.0.1:9200,coinbase.stream=wss://127.0.0.1:9201,coinbase.user_stream=wss://127.0.0.1:9202",
        ),
        ("TRADING_TLS_CA_FILE", ca.to_str().unwrap()),
    ]);
    let c = &loaded.config;
    assert_eq!(
        c.user_stream_endpoint(VenueId::Coinbase),
        Some("wss://127.0.0.1:9202")
    );
    assert_eq!(
        c.stream_endpoint(VenueId::Coinbase),
        Some("wss://127.0.0.1:9201")
    );
    assert_eq!(c.trading_tls_ca_file.as_deref(), Some(ca.as_path()));

    let missing = dir.join("missing.pem");
    let e = err(&[
        ("TRADING_TLS_CA_FILE", missing.to_str().unwrap()),
        ("TRADING_API_ENDPOINTS", "coinbase.user_stream=ftp://x"),
    ]);
    assert_eq!(e.problems.len(), 2, "{e}");
    assert!(e.to_string().contains("cannot be read"), "{e}");
    let e = err(&[("TRADING_TLS_CA_FILE", not_pem.to_str().unwrap())]);
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn oanda_account_ids_and_the_environment() {
    let loaded = ok(&[
        ("OANDA_API_TOKEN", "t"),
        ("OANDA_ACCOUNT_ID", "101-001-1234567-001"),
    ]);
    let o = loaded.config.credentials.oanda.expect("credentials");
    assert_eq!(o.environment, gekko_config::OandaEnvironment::Practice);
    let loaded = ok(&[
        ("OANDA_API_TOKEN", "t"),
        ("OANDA_ACCOUNT_ID", "001-011-12345678-002"),
        ("OANDA_ENVIRONMENT", "LIVE"),
    ]);
    let o = loaded.config.credentials.oanda.expect("credentials");
    assert_eq!(o.environment, gekko_config::OandaEnvironment::Live);
    for bad in [
        "101-001-1-001",
        "abc-def-ghijklm-nop",
        "101001-1234567-001",
        "101-001-1234567",
    ] {
        let e = err(&[("OANDA_API_TOKEN", "t"), ("OANDA_ACCOUNT_ID", bad)]);
        assert_eq!(e.problems.len(), 1, "{e}");
        assert_eq!(e.problems[0].variable, "OANDA_ACCOUNT_ID");
    }
    let e = err(&[("OANDA_ENVIRONMENT", "sandbox")]);
    assert_eq!(e.problems[0].variable, "OANDA_ENVIRONMENT");
    assert!(e.to_string().contains("practice or live"), "{e}");
}
