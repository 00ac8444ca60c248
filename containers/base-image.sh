#!/usr/bin/env bash
# Make a local Debian bookworm base image with Python 3.11 for builds that cannot pull one:
#   containers/base-image.sh [IMAGE]        (default localhost/bookworm-python:3.11)
# debootstrap (minbase + python3, python3-venv, ca-certificates) -> a tarball cached under
# $BASE_CACHE (default /var/tmp/titanic-containers) -> `podman import`. Reruns reuse the image, or
# the cached tarball if the image is gone. Needs root, debootstrap and podman.
set -euo pipefail

IMAGE=${1:-localhost/bookworm-python:3.11}
CACHE=${BASE_CACHE:-/var/tmp/titanic-containers}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
TARBALL="$CACHE/bookworm-python3.tar"

if podman image exists "$IMAGE"; then
    echo "base-image: $IMAGE exists"
    exit 0
fi

if [[ ! -s $TARBALL ]]; then
    mkdir -p "$CACHE"
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    echo "base-image: debootstrap bookworm into $rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$MIRROR"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar --numeric-owner -C "$rootfs" -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
fi

echo "base-image: importing $TARBALL as $IMAGE"
podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$TARBALL" "$IMAGE"
