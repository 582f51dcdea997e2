#!/usr/bin/env bash
# Builds the container image from the Containerfile with podman (or docker).
#   IMAGE   name of the image to build          (default customcode:latest)
#   BASE    base image of both stages           (default debian:13-slim)
#   ENGINE  podman or docker                    (default: podman if installed, else docker)
#   JOBS    stages podman builds in parallel    (default 2)
#   CA_BUNDLE  CA certificates npm trusts in the build (default: the host's bundle; empty: none)
#   CPU_SHARES CPU weight of podman's build containers (default: the engine's), e.g. 2 to build
#              only on CPU nothing else wants
# When BASE is neither present nor pullable (a machine that reaches only Debian's package
# mirror), the base is made from Debian packages: debootstrap --variant=minbase trixie, imported
# as BASE. The build stage needs network access to the Debian mirror for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${IMAGE:-customcode:latest}
base=${BASE:-debian:13-slim}
engine=${ENGINE:-$(command -v podman || command -v docker || true)}
[ -n "$engine" ] || { echo "image.sh: neither podman nor docker is installed" >&2; exit 1; }
engine_args=()
# runc: crun (podman's default on Debian 12) is not installed everywhere.
[ "$(basename "$engine")" = podman ] && command -v runc >/dev/null && engine_args+=(--runtime runc)

have_base() { "$engine" image inspect "$base" >/dev/null 2>&1; }

if ! have_base && ! timeout 60 "$engine" pull -q "$base" >/dev/null 2>&1; then
  echo "image.sh: cannot pull $base; making it with debootstrap (Debian 13, minbase)"
  base_started=$SECONDS
  command -v debootstrap >/dev/null || { echo "image.sh: debootstrap is not installed" >&2; exit 1; }
  rootfs=$(mktemp -d /var/tmp/customcode-base.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase trixie "$rootfs" >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
  rm -f "$rootfs.log"
  # What debian:13-slim drops: apt lists and caches, docs. Keeps the base small.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* \
         "$rootfs"/usr/share/man/*
  tar -C "$rootfs" -c . | "$engine" import --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  echo "image.sh: base made in $((SECONDS - base_started)) s"
fi

build_args=()
# HEALTHCHECK is part of the docker image format only; podman builds OCI images by default.
# --jobs 2: the compile stage and the runtime stage's package installs run side by side.
[ "$(basename "$engine")" = podman ] && build_args+=(--format docker --jobs "${JOBS:-2}")
if [ -n "${CPU_SHARES:-}" ] && [ "$(basename "$engine")" = podman ]; then
  build_args+=(--cpu-shares "$CPU_SHARES")
fi
# The CA bundle the build's npm trusts besides Node.js's own roots (the host's, by default), for a
# host behind a proxy that re-signs TLS. CA_BUNDLE= (empty) passes none.
ca_bundle=${CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
if [ -n "$ca_bundle" ] && [ -s "$ca_bundle" ]; then
  build_args+=(--secret "id=ca,src=$ca_bundle")
  if [ "$(basename "$engine")" = docker ]; then export DOCKER_BUILDKIT=1; fi
fi
# CCACHE_DISABLE=1: compile without the engine's ccache mount (what a first build on a new machine costs).
if [ -n "${CCACHE_DISABLE:-}" ]; then build_args+=(--build-arg "CCACHE_DISABLE=$CCACHE_DISABLE"); fi
started=$SECONDS
"$engine" "${engine_args[@]}" build "${build_args[@]}" --build-arg "BASE=$base" -t "$image" -f Containerfile .
echo "image.sh: build took $((SECONDS - started)) s"
"$engine" image inspect "$image" --format '{{.Size}}' | awk -v i="$image" '{ printf "image.sh: built %s, %.0f MB\n", i, $1 / 1e6 }'
