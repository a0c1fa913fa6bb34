#!/usr/bin/env bash
# Makes the Debian bookworm base image offline, for machines whose Docker engine has no
# image registry: debootstrap a minbase root file system from the machine's own apt
# mirror, then `docker import` it as gekko-base:bookworm (the images' BASE_IMAGE).
#
# Usage: deploy/offline-base.sh [IMAGE]   (default gekko-base:bookworm)
# Skips everything when the image already exists. Needs root (debootstrap) and
# debootstrap itself (`apt-get install debootstrap`).
set -euo pipefail

image="${1:-gekko-base:bookworm}"
if docker image inspect "$image" >/dev/null 2>&1; then
    echo "offline-base: $image exists, nothing to do"
    exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "offline-base: debootstrap is missing: apt-get install -y --no-install-recommends debootstrap" >&2
    exit 1
fi

# The mirror this machine already uses: the first URIs: line of a deb822 .sources file,
# else the first deb line of sources.list. Debian's own mirror is the fallback.
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    mirror=$(awk '/^URIs:/ {print $2; exit}' "$f")
    [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
fi
mirror="${mirror:-http://deb.debian.org/debian}"

rootfs=$(mktemp -d /tmp/gekko-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "offline-base: debootstrap --variant=minbase bookworm from $mirror"
start=$(date +%s)
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/tmp/gekko-debootstrap.log 2>&1 || {
    echo "offline-base: debootstrap failed; the last lines of /tmp/gekko-debootstrap.log:" >&2
    tail -20 /tmp/gekko-debootstrap.log >&2
    exit 1
}
# apt inside the image uses the same mirror (deb822, like the online debian image).
printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" >"$rootfs/etc/apt/sources.list.d/debian.sources"
: >"$rootfs/etc/apt/sources.list"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import - "$image" >/dev/null
echo "offline-base: $image made in $(($(date +%s) - start)) s ($(docker image inspect -f '{{.Size}}' "$image") bytes)"
