//! The reference for every variable, as data.
//!
//! `gekko config docs` (or anything else) can print it, and `docs/configuration.md` holds
//! the same rows as [`markdown_table`] renders them; a test keeps the two identical.

use std::fmt::Write as _;

use crate::vars::names;

/// One documented environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariableDoc {
    /// The variable name.
    pub name: &'static str,
    /// What the value looks like and its bounds.
    pub format: &'static str,
    /// The value used when unset.
    pub default: &'static str,
    /// A valid example value.
    pub example: &'static str,
    /// What it is for.
    pub description: &'static str,
}

const fn doc(
    name: &'static str,
    format: &'static str,
    default: &'static str,
    example: &'static str,
    description: &'static str,
) -> VariableDoc {
    VariableDoc {
        name,
        format,
        default,
        example,
        description,
    }
}

const CREDENTIAL_DEFAULT: &str = "unset (paper mode)";

static VARIABLES: &[VariableDoc] = &[
    doc(
        names::GEKKO_ENV_FILE,
        "a file path",
        "`./.env` if that file exists",
        "`/etc/gekko/gekko.env`",
        "A .env file read before validation. Variables set in the process environment win. A path that does not exist is an error.",
    ),
    doc(
        names::REDIS_URL,
        "a `redis://`, `rediss://` or `unix://` URL; or a comma-separated list of `redis://`/`rediss://` node URLs (a Redis Cluster)",
        "unset (in-process bus)",
        "`redis://:password@127.0.0.1:6379/0`; a cluster: `redis://10.0.0.1:7000,redis://10.0.0.2:7000,redis://10.0.0.3:7000`",
        "Redis for streams and pub/sub. Several node URLs mean a Redis Cluster: any reachable nodes will do (the rest are discovered), streams are hash-tagged per venue, pub/sub is sharded, and durable appends wait for one replica (`WAIT 1`). See docs/deploy.md#redis-cluster. Passwords are redacted in `Debug` and logs. Replaces the deprecated `REDIS_URI`.",
    ),
    doc(
        names::TRADING_API_ENDPOINTS,
        "`venue=url,...`, `venue.stream=url`, `venue.user_stream=url` and `venue.fallback=url`; venue one of coinbase, binanceus, oanda; REST and fallback url `http(s)://`, stream urls `ws(s)://` or `http(s)://`",
        "empty: each venue's built-in endpoint, or its simulator in paper mode",
        "`coinbase=https://127.0.0.1:9200,coinbase.stream=wss://127.0.0.1:9201,coinbase.user_stream=wss://127.0.0.1:9202`",
        "REST base URL override per venue; `venue.stream` overrides the websocket/streaming base URL, `venue.user_stream` the private stream's where the venue has a separate host (Coinbase's user websocket; it defaults to `venue.stream` when only that is set).",
    ),
    doc(
        names::TRADING_RATE_LIMITS,
        "`venue=N/period,...`; N at least 1; period a duration",
        "`binanceus=1200/1m,coinbase=30/1s,oanda=100/1s`",
        "`coinbase=10/1s`",
        "Request budget per venue. Venues not listed keep their default.",
    ),
    doc(
        names::TRADING_TLS_CA_FILE,
        "a readable PEM file with at least one certificate",
        "unset: the built-in web PKI roots only",
        "`/etc/gekko/sim-ca.pem`",
        "Roots trusted for venue connections (REST and websockets) besides the built-in ones, so a gateway can trust a simulator's or a corporate proxy's CA. Read by the Coinbase and OANDA gateways and by the start-up probe.",
    ),
    doc(
        names::SUPPORTED_TRADING_PAIRS,
        "comma-separated upper-case `BASE-QUOTE` pairs, each optionally venue-qualified (`binanceus:BTC-USD`); non-empty; no duplicates",
        "`BTC-USD,ETH-USD,oanda:EUR-USD,oanda:USD-JPY`",
        "`BTC-USD,ETH-USD,EUR-USD` or `BTC-USD,oanda:EUR-USD`",
        "Pairs gekko may trade. A plain pair means every venue that lists it; a venue-qualified pair only that venue. Each gateway trades the configured pairs its venue lists and logs the ones it skips, so a pair one venue lacks never stops that venue's gateway. A venue that lists none of them (OANDA with only crypto pairs, the crypto venues with only `oanda:` pairs) still runs its gateway with no instruments: accounts, reconciliation and closing positions work, `GetInstruments` answers an empty list, and its `<venue>-market-data` readiness is met with a note. Replaces the deprecated `TRADING_PAIRS`.",
    ),
    doc(
        names::POSITION_LIMITS,
        "`PAIR=quantity,...`, PAIR plain or venue-qualified (`binanceus:BTC-USD=1`); quantity a decimal above 0; each pair must be covered by `SUPPORTED_TRADING_PAIRS`",
        "empty (no limits)",
        "`BTC-USD=2,ETH-USD=20,binanceus:BTC-USD=1`",
        "Largest absolute position per pair, in base units, enforced by each gateway before an order is sent. Working orders count: the holding plus the unfilled quantity of every open order on the same side plus the new order must stay within the limit, so stacked resting buys cannot exceed it (sells likewise, for short positions on margin venues). An order that reduces that exposure is always allowed. A plain limit applies on every venue; a venue-qualified one overrides it on that venue.",
    ),
    doc(
        names::ML_MODEL_ENDPOINTS,
        "`name=location,...`; name of letters, digits, `_`, `-`, `.`; location a directory or `http(s)://` URL",
        "`direction=models`",
        "`direction=models,volatility=http://127.0.0.1:8500`",
        "Where each model is loaded from.",
    ),
    doc(
        names::PREDICTION_PARAMETERS,
        "keys `window` (2 to 4096), `horizon` (1 to window), `interval` (a duration, `0` for every quote)",
        "`window` and `horizon` unset (the loaded model's own), `interval=0`",
        "`window=32,horizon=1,interval=250ms`",
        "Inputs of the prediction loop. A model's `window` (observations per prediction) and `horizon` (steps ahead) are fixed when it is trained and read from its `meta.json`; set here, they are what the operator expects, and the inference service refuses to start (naming both values) on a model trained with others. `interval` samples each instrument's quotes by their own timestamps: a quote less than `interval` after the last one observed is skipped (counted in `gekko_inference_quotes_sampled_out_total`), so the window spans at least `window` x `interval`; `0` observes every quote. Missing keys take their defaults; unknown keys are errors.",
    ),
    doc(
        names::MODEL_UPDATE_FREQUENCIES,
        "`name=duration,...`; at least 1s; names must be in `ML_MODEL_ENDPOINTS`",
        "empty: every model is checked every 5m",
        "`direction=1m`",
        "How often each model is checked for a new version.",
    ),
    doc(
        names::CONFIDENCE_THRESHOLDS,
        "`name=decimal,...`; 0 to 1; names must be in `ML_MODEL_ENDPOINTS`",
        "`direction=0.55` if a `direction` model exists, else empty",
        "`direction=0.6`",
        "Minimum confidence for a model's prediction to be acted on.",
    ),
    doc(
        names::SYSTEM_PERFORMANCE_PARAMS,
        "keys `batch_max_size` (1 to 65536), `batch_max_wait` (0 to 1s), `max_inflight_orders` (1 to 1000000), `order_timeout` (100ms to 5m), `shutdown_grace` (0 to 5m)",
        "`batch_max_size=64,batch_max_wait=2ms,max_inflight_orders=64,order_timeout=5s,shutdown_grace=10s`",
        "`batch_max_size=128,order_timeout=3s`",
        "Inference batching, orders in flight per gateway, order submit timeout, shutdown grace period.",
    ),
    doc(
        names::RESOURCE_ALLOCATION_SETTINGS,
        "keys `device` (auto, cuda, metal or cpu), `gpu_memory_budget_mb` (1 to 1048576), `cpu_threads` (0 to 4096, 0 means one per core)",
        "`device=auto,gpu_memory_budget_mb=2048,cpu_threads=0`",
        "`device=cuda,gpu_memory_budget_mb=8192`",
        "Compute resources for inference.",
    ),
    doc(
        names::MONITORING_CONFIGURATIONS,
        "keys `http_addr`, `grpc_addr` (ip:port, different from each other), `log_format` (json or pretty), `log_level` (a level, or `;`-separated `target=level` directives), `stale_after` (at least 100ms)",
        "`http_addr=127.0.0.1:9464,grpc_addr=127.0.0.1:50051,log_format=pretty,log_level=info,stale_after=10s`",
        "`http_addr=0.0.0.0:9464,log_format=json,log_level=info;gekko_bus=debug`",
        "The HTTP listener serves `/metrics`, `/livez` and `/readyz`. Levels: trace, debug, info, warn, error, off. Market data older than `stale_after` makes readiness fail.",
    ),
    doc(
        names::BACKUP_SETTINGS,
        "keys `enabled` (bool), `dir` (a path, non-empty when enabled), `interval` (at least 1m), `retention` (at least 1)",
        "`enabled=false,dir=./backups,interval=1h,retention=7`",
        "`enabled=true,dir=/var/lib/gekko/backups,interval=6h`",
        "Snapshots of the durable Redis streams (config versions, orders, fills, audit, kill switches) into `dir`, one file each; `retention` is how many are kept. With `enabled=true` and `REDIS_URL`, `gekko up` (and configd, which hosts it in docker compose) takes one at start-up and one every `interval`; `gekko backup now` takes one by hand and `gekko restore FILE` restores one into an empty Redis. Encrypted (XChaCha20-Poly1305) when `ENCRYPTION_SETTINGS` has a key. See docs/deploy.md#backups.",
    ),
    doc(
        names::CONFIG_SERVICE,
        "keys `url` (`http://` or `https://` with a host), `token` or `token_file` (exclusive; one is required with `url`), `ca_file` (a PEM path, `https://` only), `wait` (1s to 10m)",
        "unset: credentials come from the service's own environment; `wait=30s`",
        "`url=http://configd:50051,token_file=/etc/gekko/configd.token`",
        "A gateway binary with `url` set asks configd's `GetSecrets` for its venue's credentials at start-up (bearer token, admin role at configd) and layers them over its own variables before validation, retrying for up to `wait` while configd does not answer (then exit 69). A served variable also set in its own environment to another value, or a venue configd holds no credentials for, is a configuration problem (exit 64): nothing starts with partial secrets. `token` is a secret. See docs/deploy.md#credentials-from-configd.",
    ),
    doc(
        names::ENCRYPTION_SETTINGS,
        "keys `key` (64 hex characters), `key_file` (a path), `algorithm` (only `xchacha20poly1305`); `key` and `key_file` are exclusive",
        "`algorithm=xchacha20poly1305`, no key",
        "`key_file=/run/secrets/gekko_key`",
        "At-rest encryption of stored secrets and backups. The key opens sealed env files (`gekko secrets seal`; a sealed `GEKKO_ENV_FILE`, `.env` or `CONFIGD_ENV_FILE` is unsealed with it, and a wrong key, a tampered or a truncated file is a problem: nothing of the file is used). `key` is a secret: never shown in `Debug`, logs or problems.",
    ),
    doc(
        names::ACCESS_CONTROL_CONFIG,
        "keys `tokens` (`;`-separated `name:role:sha256hex[:totp=BASE32]`, role `viewer`, `trader` or `admin`), `read_only` (bool), `allowed_clients` (`;`-separated token names), `open` (`none` or `;`-separated `health`, `reflection`), `auth_failures_per_minute` (1 to 100000), `tls_cert`, `tls_key`, `tls_client_ca` (PEM file paths); deprecated `grpc_auth_token` (at least 16 characters)",
        "no tokens (auth off), `read_only=false`, any client, `open=health;reflection`, `auth_failures_per_minute=10`, no TLS",
        "`tokens=ops:admin:<sha256 hex>:totp=<base32>;bot:trader:<sha256 hex>,tls_cert=certs/server.pem,tls_key=certs/server.key`",
        "gRPC access, enforced on every method by the `AuthLayer` (see [security.md](security.md)): a token (`authorization: Bearer`) whose role is too low gets `PERMISSION_DENIED`, a missing or wrong one `UNAUTHENTICATED`; `read_only` refuses every state-changing call; a token with `totp` must send `x-gekko-totp` on admin actions. Tokens are configured by SHA-256 only (`gekko token new`). With `tls_cert`/`tls_key` gRPC and HTTP serve TLS; `tls_client_ca` requires client certificates (mTLS; `gekko certs dev`). No tokens means auth is off: `gekko check` fails its posture row when gRPC is not on loopback. `grpc_auth_token` still works as the admin token `legacy`, with a warning.",
    ),
    doc(
        names::AUDIT_LOGGING_SETTINGS,
        "keys `enabled` (bool), `stream` (a Redis stream name without spaces), `retention_days` (1 to 36500), `key` (64 hex characters, secret), `key_file` (a path to a file holding 64 hex characters), `archive_dir` (a directory path); `key` and `key_file` are exclusive",
        "`enabled=true,stream=gekko:audit,retention_days=365,archive_dir=./audit-archive`, key generated in `<archive_dir>/audit.key`",
        "`retention_days=90,key_file=/run/secrets/gekko_audit_key`",
        "The tamper-evident audit trail: every entry is hash-chained to the one before and carries an HMAC-SHA256 under the audit key; `gekko audit verify` checks it and `gekko audit export` writes JSON lines. `gekko up` writes `stream`; a service binary run alone writes `<stream>:<program>` (one writer process per stream). Entries older than `retention_days` are moved to a sealed archive in `archive_dir` (XChaCha20-Poly1305), then trimmed from the stream, at start-up and daily. Without `key` or `key_file` a random key is generated into `<archive_dir>/audit.key` (mode 0600) with a warning. `enabled=false` writes nothing. The key is never shown in `Debug`, logs or problems. Details in docs/security.md.",
    ),
    doc(
        names::COMPLIANCE_SETTINGS,
        "keys `max_order_notional` (a decimal above 0), `max_daily_notional` (at least `max_order_notional`), `daily_reset_hour` (an integer 0..=23), `restricted_pairs` (`;`-separated pairs from `SUPPORTED_TRADING_PAIRS`), `trading_enabled` (bool)",
        "`max_order_notional=100000,max_daily_notional=1000000,daily_reset_hour=0,trading_enabled=true`, nothing restricted",
        "`max_order_notional=5000,max_daily_notional=50000,daily_reset_hour=22,restricted_pairs=ETH-USD`",
        "Pre-trade limits in the account currency (the venue's `account_notional`: the quote currency on Binance.US and Coinbase USD pairs; on OANDA the account's home currency, so `USD_JPY` counts its units as USD and `EUR_GBP` is converted at the `GBP_USD` mid, and one that cannot be converted is refused), enforced by each gateway before anything is sent; `max_daily_notional` sums them across instruments. `max_order_notional` caps one order (a market order is priced at the best opposite quote, and refused while the gateway has none). `max_daily_notional` caps the notional sent per trading day (orders the venue did not refuse, cancelled ones included), which starts at `daily_reset_hour`:00 UTC; the sum is rebuilt exactly from `gekko:{orders:<venue>}` at start-up, so a restart does not reset it. `trading_enabled=false` refuses every new order and cannot be overridden; the runtime kill switch is `GatewayService.SetTradingEnabled` (admin), recorded on `gekko:kill_switch:<venue>` so it survives a restart.",
    ),
    doc(
        names::CONTROLLER_SETTINGS,
        "keys `shutdown_mode` (`stop-entries`, `cancel` or `flatten`), `step_deadline` (at least 1s), `reports_dir` (a path), `required_checks` (`;`-separated from config, docker, redis, venues, mcp, llm, gpu, security; or `none`)",
        "`shutdown_mode=cancel,step_deadline=10s,reports_dir=reports,required_checks=config;redis`",
        "`shutdown_mode=flatten,reports_dir=/var/lib/gekko/reports,required_checks=config;redis;venues;security`",
        "`gekko up` runs the start-up checks in order and stops (exit 69) when a required one fails; the table is the first audit entry. SIGTERM/SIGINT shut down in `shutdown_mode`; `gekko down --mode` and `SystemService.Shutdown` choose per call. Each step waits up to `step_deadline` for venue confirmation. Every shutdown writes `gekko-report-<time>.json` and `.md` to `reports_dir`.",
    ),
    doc(
        names::STRATEGY_SETTINGS,
        "keys `enabled` (bool), `allow_live` (bool), `name` (letters, digits, `_`, `-`), `order_notional` (a decimal above 0), `cooldown` (a duration)",
        "`enabled=false,allow_live=false,name=strategy,order_notional=100,cooldown=30s`",
        "`enabled=true,order_notional=250,cooldown=1m`",
        "The trading loop: signals on `gekko:{signals}` at or above their model's `CONFIDENCE_THRESHOLDS` become orders of about `order_notional`, trimmed to `POSITION_LIMITS`, at most one per instrument per `cooldown`. Client ids derive from `name` and the signal id, so a replay never doubles an order. Off by default; `gekko up --paper-trade` turns it on when every venue is simulated; a venue with live credentials also needs `allow_live=true`.",
    ),
    doc(
        names::MCP_SETTINGS,
        "keys `mode` (`read_only`, `paper` or `trade`), `max_order_notional` (a decimal above 0, at most `COMPLIANCE_SETTINGS` `max_order_notional` and `max_daily_notional`), `allowed_instruments` (`;`-separated pairs, optionally venue-qualified as `binanceus:BTC-USD`), `max_orders_per_minute` (1 to 10000), `http_addr` (ip:port or `off`), `allowed_hosts` (`;`-separated host names), `grpc_ca`, `grpc_client_cert`, `grpc_client_key` (PEM file paths; the last two together), `grpc.binanceus`, `grpc.coinbase`, `grpc.oanda`, `grpc.inference` (`http://` or `https://` gRPC URLs; `https://` needs `grpc_ca`)",
        "`mode=read_only`, `max_order_notional=1000` (or the compliance limit when lower), `max_orders_per_minute=10`, `http_addr=127.0.0.1:9470`, `allowed_hosts=localhost;127.0.0.1;::1;gekko;gekko-mcp`; every configured pair allowed",
        "`mode=paper,max_order_notional=250,allowed_instruments=binanceus:BTC-USD;ETH-USD,max_orders_per_minute=5`",
        "The risk guard of gekko's MCP server (see [mcp.md](mcp.md)), checked server side before any state-changing gRPC call: `read_only` refuses every order, cancel and close; `paper` allows them only on venues `GetStatus` reports as simulated; `trade` also on live venues. An order's notional is qty times its limit price, or times the current ask (buy) or bid (sell) for a market order (no quote: refused). Order and cancel attempts are counted per MCP session in a sliding minute. A refusal is a tool result with `isError: true` naming the rule. `http_addr` is the streamable HTTP transport (`/mcp`, a bearer token from `ACCESS_CONTROL_CONFIG` required on every request) that `gekko up` serves; `allowed_hosts` are the `Host` values it accepts. When gRPC serves TLS, the HTTP transport's in-process gRPC client verifies gekko with `grpc_ca` (e.g. the `ca.pem` of `gekko certs dev`) and, under mTLS, presents `grpc_client_cert`/`grpc_client_key`; without `grpc_ca` the HTTP transport stays off. `gekko mcp` (stdio) reads only this variable and `COMPLIANCE_SETTINGS` from its environment. Routed mode (the `mcp` container of the compose file, which requires it): `grpc.<venue>` is the gRPC URL of that venue's own gateway process and `grpc.inference` the inference service's; gateway tools go to the route their `venue` names (an unrouted venue is refused naming the routed ones), `system_status` is built from each route's gRPC health check, every routed venue counts as live (`paper` refuses orders there, `trade` allows them), `explain_config` points to configd's `GetConfig`, and the MCP process writes the `mcp.tool_call` audit records itself. With `https://` routes `grpc_ca` (and under mTLS the client certificate) apply to them.",
    ),
    doc(
        names::MCP_SERVERS,
        "comma-separated `name=location[;option...]`; name of letters, digits, `_`, `-`, each once; location `stdio:COMMAND ARGS` (split on spaces, `\"` quotes keep spaces, no shell, no commas) or an `http(s)://` URL; options `required` or `optional`, `init_timeout` (100ms to 5m), `call_timeout` (100ms to 1h)",
        "unset: no MCP client connections; each server `optional,init_timeout=10s,call_timeout=30s`",
        "`files=stdio:npx -y @modelcontextprotocol/server-filesystem /srv;required,search=https://mcp.example.com/mcp;call_timeout=1m`",
        "External MCP servers gekko connects to as a client (the `mcp-clients` service of `gekko up`, and one `gekko check` row each): it initializes, lists the tools and keeps the connection, reconnecting with backoff behind a circuit breaker. A `required` server that is down keeps `/readyz` not ready and fails its check row; an `optional` one warns. An `initialize` that takes longer than `init_timeout` counts as down. Tools are reached through the pool and the `McpService` gRPC (ListServers, ListTools, CallTool). Details in docs/mcp.md.",
    ),
    doc(
        names::MCP_SERVER_TOKENS,
        "comma-separated `name=token`, secret; each name an http(s) server of `MCP_SERVERS`",
        "unset: no token is sent",
        "`search=<token>`",
        "Bearer tokens sent as `Authorization: Bearer` to the HTTP servers of `MCP_SERVERS`. Kept apart so the server list can be shown and logged; a token is never shown in `Debug`, logs or problems.",
    ),
    doc(
        names::GATEWAY_HA_SETTINGS,
        "keys `enabled` (true/false), `lease_ttl` (500ms to 5m), `renew_interval` (50ms to 1m, below `lease_ttl`), `lease_key` (a Redis key), `advertise_addr` (`host:port`), `replica_id` (no spaces or `|`)",
        "`enabled=false,lease_ttl=5s,renew_interval=1s`; `lease_key` `gekko:{orders:<venue>}:leader`; `advertise_addr` the bound gRPC address (host name for 0.0.0.0); `replica_id` `<host name>/<advertise_addr>`",
        "`enabled=true,lease_ttl=3s,renew_interval=500ms`",
        "Leader election between replicas of one gateway (`--scale gateway-binanceus=2`): a Redis lease (`SET NX PX`, renewed by its owner) with a fencing token (`INCR`) that every order and fill write carries; a write under a stale token is refused and the replica steps down. Only the leader sends orders; a standby keeps market data warm, publishes nothing, and forwards order calls to the leader's `advertise_addr`. A dead leader is replaced within `lease_ttl` plus reconciliation. Needs `REDIS_URL`. The compose file turns it on for the gateways. See docs/deploy.md#scaling-a-gateway.",
    ),
    doc(
        names::BINANCEUS_API_KEY,
        "a string (secret); needs `BINANCEUS_API_SECRET`",
        CREDENTIAL_DEFAULT,
        "`your-binanceus-api-key`",
        "Binance.US API key. Replaces the deprecated `BINANCE_US_API_KEY`.",
    ),
    doc(
        names::BINANCEUS_API_SECRET,
        "a string (secret); needs `BINANCEUS_API_KEY`",
        CREDENTIAL_DEFAULT,
        "`your-binanceus-api-secret`",
        "Binance.US signing secret: the HMAC secret, or the Ed25519 private key with `BINANCEUS_KEY_TYPE=ed25519`. Replaces the deprecated `BINANCE_US_API_SECRET`.",
    ),
    doc(
        names::BINANCEUS_KEY_TYPE,
        "`hmac` or `ed25519`",
        "`hmac`",
        "`ed25519`",
        "How `BINANCEUS_API_SECRET` signs requests. Ed25519 keys are documented for binance.com, not confirmed for Binance.US, hence opt-in.",
    ),
    doc(
        names::BINANCEUS_RECV_WINDOW,
        "a duration from 1ms to 60s, in whole milliseconds",
        "`5s`",
        "`20s`",
        "Binance.US `recvWindow`: how long after its timestamp the venue accepts a signed request (Binance refuses more than 60 s). A request older than that is refused, so the gateway waits this plus 2 s for an order whose answer was lost before it calls the order \"not placed\": a larger window tolerates a slower network at the cost of a longer wait in doubt. Paper mode uses it too.",
    ),
    doc(
        names::COINBASE_API_KEY_NAME,
        "`organizations/{org_id}/apiKeys/{key_id}` or a bare key UUID; needs `COINBASE_API_SECRET`",
        CREDENTIAL_DEFAULT,
        "`organizations/{org_id}/apiKeys/{key_id}`",
        "Coinbase Advanced Trade (CDP) API key name, the JWT `kid` and `sub`. Not secret. With `COINBASE_API_SECRET` the Coinbase gateway trades live; without both it runs in paper mode against an in-process simulator.",
    ),
    doc(
        names::COINBASE_API_SECRET,
        "an EC P-256 private key (SEC1 or PKCS#8 PEM, ES256) or an Ed25519 key (base64 of 64 or 32 bytes, or PKCS#8 PEM, EdDSA), secret; literal `\\n` sequences become newlines; needs `COINBASE_API_KEY_NAME`",
        CREDENTIAL_DEFAULT,
        "`-----BEGIN EC PRIVATE KEY-----\\n...\\n-----END EC PRIVATE KEY-----`",
        "Coinbase CDP signing key: a fresh JWT is signed with it for every REST request and every websocket subscribe. A key that is neither a valid EC P-256 nor an Ed25519 key is refused at start-up, without echoing it. Replaces the deprecated `COINBASE_API_PRIVATE_KEY`.",
    ),
    doc(
        names::OANDA_API_TOKEN,
        "a string (secret); needs `OANDA_ACCOUNT_ID`",
        CREDENTIAL_DEFAULT,
        "`your-oanda-token`",
        "OANDA v20 personal access token, sent as `Authorization: Bearer`. With `OANDA_ACCOUNT_ID` the OANDA gateway trades live; without both it runs in paper mode against an in-process simulator.",
    ),
    doc(
        names::OANDA_ACCOUNT_ID,
        "`NNN-NNN-NNNNNNN-NNN` (digits; the third group 5 to 9 digits); needs `OANDA_API_TOKEN`",
        CREDENTIAL_DEFAULT,
        "`101-001-1234567-001`",
        "OANDA account to trade in, checked against `GET /v3/accounts` at start. Not secret.",
    ),
    doc(
        names::OANDA_ENVIRONMENT,
        "`practice` or `live`",
        "`practice`",
        "`live`",
        "Which OANDA hosts the token is for: fxTrade Practice (`api-fxpractice.oanda.com`, `stream-fxpractice.oanda.com`) or live (`api-fxtrade.oanda.com`, `stream-fxtrade.oanda.com`). `TRADING_API_ENDPOINTS` `oanda=` and `oanda.stream=` override either.",
    ),
    doc(
        names::OPENROUTER_API_KEY,
        "a string (secret), `sk-or-v1-...`",
        "unset: no OpenRouter",
        "`sk-or-v1-...`",
        "OpenRouter API key, sent as `Authorization: Bearer`. Needed by every `LLM_MODELS` role that names `openrouter:`. Never shown in `Debug`, logs, errors or problems.",
    ),
    doc(
        names::OPENROUTER_BASE_URL,
        "an `http(s)://` URL (the `/api/v1` base)",
        "`https://openrouter.ai/api/v1`",
        "`http://127.0.0.1:9480/api/v1` (sim-llm)",
        "OpenRouter's API base: `GET /models`, `GET /key` and `POST /chat/completions` are under it. Point it at `sim-llm` in paper setups.",
    ),
    doc(
        names::OPENROUTER_APP_URL,
        "an `http(s)://` URL",
        "unset (no attribution)",
        "`https://github.com/example/gekko`",
        "App attribution: sent to OpenRouter as `HTTP-Referer`. Never affects routing or auth.",
    ),
    doc(
        names::OPENROUTER_APP_TITLE,
        "a string without control characters",
        "unset (no attribution)",
        "`gekko`",
        "App attribution: sent to OpenRouter as `X-OpenRouter-Title` and the older `X-Title`.",
    ),
    doc(
        names::LITELLM_API_KEY,
        "a string starting with `sk-` (secret): the proxy's master key or a virtual key",
        "unset: no LiteLLM",
        "`sk-litellm-master`",
        "LiteLLM proxy key, sent as `Authorization: Bearer`. Needed by every `LLM_MODELS` role that names `litellm:`. Never shown in `Debug`, logs, errors or problems.",
    ),
    doc(
        names::LITELLM_BASE_URL,
        "an `http(s)://` URL (the proxy root, no `/v1`)",
        "`http://127.0.0.1:4000`",
        "`http://litellm:4000`",
        "The LiteLLM proxy: `/health/liveliness`, `/health/readiness`, `/v1/models`, `/model/info` and `/v1/chat/completions` are under it.",
    ),
    doc(
        names::LLM_MODELS,
        "`;`-separated `role=provider:model` entries, each with an optional `|provider:model` secondary; role of letters, digits, `_`, `-`, each once; provider `openrouter` or `litellm` (its key must be set); at most two targets, different",
        "unset: no LLM service (`gekko check` shows `llm: not configured`)",
        "`analyst=openrouter:openai/gpt-4o-mini|litellm:gpt-4o-mini;summary=litellm:gpt-4o-mini`",
        "The models per role, with failover from the primary to the secondary on 429 (after which the provider is skipped until `Retry-After`), 5xx, timeouts and connection errors; 400, 401, 402 and 403 are reported, not failed over. Every model must be in its provider's model list: checked by `gekko check` and the `llm` readiness component. See [llm.md](llm.md).",
    ),
    doc(
        names::LLM_SETTINGS,
        "keys `connect_timeout` (10ms to 1m), `first_byte_timeout` (10ms to 10m), `total_timeout` (10ms to 1h, at least `first_byte_timeout`), `breaker_threshold` (1 to 100), `breaker_cooldown` (10ms to 1h), `max_retries` (0 to 5), `probe_interval` (100ms to 1h)",
        "`connect_timeout=5s,first_byte_timeout=30s,total_timeout=2m,breaker_threshold=3,breaker_cooldown=30s,max_retries=0,probe_interval=30s`",
        "`first_byte_timeout=10s,breaker_threshold=5,breaker_cooldown=1m`",
        "LLM request limits: `first_byte_timeout` bounds the wait for the response headers and, in a stream, any silence (keep-alive comments count); `total_timeout` bounds the whole request. A provider's circuit opens after `breaker_threshold` consecutive failures and lets one probe through after `breaker_cooldown`. `max_retries` retries the same provider after a 5xx or connection error before failing over. `probe_interval` is how often the `llm` service re-checks the model lists for readiness.",
    ),
];

/// Every variable gekko reads, in the order problems are reported.
#[must_use]
pub fn documented_variables() -> &'static [VariableDoc] {
    VARIABLES
}

/// [`documented_variables`] as one Markdown table with the columns
/// `name | format | default | example | description`.
#[must_use]
pub fn markdown_table() -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = String::from(
        "| name | format | default | example | description |\n|---|---|---|---|---|\n",
    );
    for v in VARIABLES {
        // Writing to a `String` cannot fail.
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            v.name,
            cell(v.format),
            cell(v.default),
            cell(v.example),
            cell(v.description)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_variable_is_documented_once() {
        let documented: BTreeSet<_> = VARIABLES.iter().map(|v| v.name).collect();
        assert_eq!(
            documented.len(),
            VARIABLES.len(),
            "a variable is documented twice"
        );
        let read: BTreeSet<_> = names::ALL.iter().copied().collect();
        assert_eq!(documented, read);
    }

    #[test]
    fn docs_file_holds_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let text = std::fs::read_to_string(path).expect("docs/configuration.md exists");
        assert!(
            text.contains(&markdown_table()),
            "docs/configuration.md is out of date; paste gekko_config::markdown_table() into it"
        );
    }
}
