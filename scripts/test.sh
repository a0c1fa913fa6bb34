#!/usr/bin/env bash
# Runs every gekko test on a fresh machine that has only the Rust toolchain.
#
# 1. Installs redis-server and redis-tools from Debian's packages when missing (sudo only
#    when not root). Tests start their own redis-server on free ports; nothing listens on
#    6379 for them.
#    Installs prometheus and prometheus-alertmanager (promtool, amtool) the same way.
#    Creates .venv-sdk with the official venue and MCP SDKs pinned in
#    scripts/sdk-requirements.txt, and .venv-litellm with the LiteLLM proxy pinned in
#    scripts/litellm-requirements.txt.
# 2. Checks formatting, the crate-graph rules (scripts/check-boundaries.sh), dependency
#    policy (`cargo deny check bans licenses sources`, installing cargo-deny from the crate
#    registry when it is missing; advisories need GitHub, which is not reachable), and
#    clippy (warnings are errors).
# 3. Builds and runs the whole test suite.
#
# CI (.ci/run) runs exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-benchmark >/dev/null 2>&1; then
    echo "==> installing redis-server and redis-tools from Debian's packages"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends redis-server redis-tools
fi
redis-server --version
# The Redis Cluster tests (crates/testkit, crates/bus, services/gekko) need redis-cli.
if ! command -v redis-cli >/dev/null 2>&1; then
    echo "scripts/test.sh: redis-cli is missing (Debian package redis-tools); the Redis Cluster tests need it" >&2
    exit 1
fi
# debootstrap makes the compose e2e test's base image offline (deploy/offline-base.sh);
# only needed where a Docker daemon answers.
if docker info >/dev/null 2>&1 && ! command -v debootstrap >/dev/null 2>&1; then
    echo "==> installing debootstrap from Debian's packages"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends debootstrap
fi
# Prometheus (promtool) and Alertmanager (amtool) for the monitoring checks
# (services/gekko/tests/monitoring.rs); nothing starts them as daemons, the tests do.
if ! command -v promtool >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1 \
    || ! command -v prometheus-alertmanager >/dev/null 2>&1; then
    echo "==> installing prometheus and prometheus-alertmanager from Debian's packages"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager
fi
promtool --version 2>&1 | sed -n 1p

# The official venue SDKs, in a pinned venv, for the simulator checks.
# The venv keeps a copy of the requirements it was built from; a change rebuilds it.
if ! cmp -s scripts/sdk-requirements.txt .venv-sdk/requirements.txt; then
    echo "==> creating .venv-sdk with the pinned official SDKs"
    rm -rf .venv-sdk
    python3 -m venv .venv-sdk
    .venv-sdk/bin/pip install --quiet --disable-pip-version-check -r scripts/sdk-requirements.txt
    cp scripts/sdk-requirements.txt .venv-sdk/requirements.txt
fi
# The real LiteLLM proxy, in its own pinned venv: it pins many packages of its own (openai,
# mcp, pydantic), so keeping it apart from the SDK venv avoids one fighting the other.
if ! cmp -s scripts/litellm-requirements.txt .venv-litellm/requirements.txt; then
    echo "==> creating .venv-litellm with the pinned LiteLLM proxy (about 90 s)"
    rm -rf .venv-litellm
    python3 -m venv .venv-litellm
    .venv-litellm/bin/pip install --quiet --disable-pip-version-check -r scripts/litellm-requirements.txt
    cp scripts/litellm-requirements.txt .venv-litellm/requirements.txt
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> crate graph rules"
scripts/check-boundaries.sh

if ! cargo deny --version >/dev/null 2>&1; then
    echo "==> installing cargo-deny from crates.io"
    cargo install --locked cargo-deny@0.20.2
fi
echo "==> cargo deny check bans licenses sources"
cargo deny --log-level error check bans licenses sources

echo "==> cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --locked --no-fail-fast "$@"

# The docker compose end-to-end test: images built offline, the whole paper stack up,
# orders, Redis cut off and back. It prints a loud SKIPPED line when no Docker daemon
# answers.
echo "==> compose end-to-end test"
tests/compose/e2e.sh
