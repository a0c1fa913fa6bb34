#!/usr/bin/env bash
# Builds the gekko binaries the images need on the host and stages the build context
# for deploy/docker/Dockerfile in target/docker-context/ (bin/, models/ and a copy of the
# Dockerfile, which docker-compose.yml builds from).
#
# Usage: deploy/docker/stage.sh [--release]
#   default: the debug profile (the binaries the test suite already builds: quick);
#   --release: optimised binaries (smaller and faster, a long build on a small machine).
# The copies are stripped of debug info, which keeps the images small either way.
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=debug
cargo_flags=()
if [ "${1:-}" = "--release" ]; then
    profile=release
    cargo_flags=(--release)
fi
bins=(sim-binanceus sim-coinbase sim-oanda gateway-binanceus gateway-coinbase gateway-oanda inference configd healthd mcp)
pkgs=()
for b in "${bins[@]}"; do pkgs+=(-p "$b"); done

start=$(date +%s)
cargo build --locked "${cargo_flags[@]}" "${pkgs[@]}"
ctx=target/docker-context
rm -rf "$ctx"
mkdir -p "$ctx/bin"
for b in "${bins[@]}"; do
    objcopy --strip-debug "target/$profile/$b" "$ctx/bin/$b" 2>/dev/null \
        || cp "target/$profile/$b" "$ctx/bin/$b"
done
cp -r models "$ctx/models"
cp deploy/docker/Dockerfile "$ctx/Dockerfile"
echo "stage: $profile binaries staged in $ctx in $(($(date +%s) - start)) s ($(du -sh "$ctx/bin" | cut -f1) of binaries)"
