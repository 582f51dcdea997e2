#!/usr/bin/env bash
# Installs what customcode needs to build, run and test on Debian 12. Idempotent: packages
# already installed are not fetched again.
set -euo pipefail

packages=(
  build-essential cmake
  libboost1.81-dev libboost-json1.81-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev googletest
  python3 python3-pytest python3-requests python3-yaml python3-jsonschema
  bubblewrap wrk libseccomp-dev pkg-config
  python3-numpy python3-pandas python3-tabulate python3-dateparser python3-urllib3 python3-docx
  chromium chromium-driver python3-selenium  # the playground's browser test
)
# Worker network isolation (docs/security.md): pasta, nftables, unshare (util-linux), and iproute2
# for the tests' own "outside" namespace, openssl for its HTTPS server's certificate.
packages+=(passt nftables util-linux iproute2 openssl)
# Deploy tests (tests/deploy): a container engine, debootstrap for the offline base image, the
# proxy, and kubectl for `kubectl kustomize` (Debian's kubernetes-client unless one is installed).
packages+=(podman runc containernetworking-plugins iptables fuse-overlayfs debootstrap haproxy curl)
command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Kubernetes schema validator of tests/deploy (pinned by its package-lock.json).
deploy_tests="$(dirname "$0")/../tests/deploy"
if [ ! -d "$deploy_tests/node_modules/kubernetes-models" ]; then
  echo "setup: installing the npm packages of tests/deploy"
  npm ci --prefix "$deploy_tests" --no-audit --no-fund --loglevel=error >/dev/null
fi

# @redocly/cli lints docs/openapi.json (scripts/lint-openapi.sh), installed from npm's default
# registry into .tools/redocly (not globally). 1.34 runs on Debian 12's Node.js 18; 2.x needs 20.19.
REDOCLY_VERSION=1.34.20
tools="$(cd "$(dirname "$0")/.." && pwd)/.tools/redocly"
if [ "$(cat "$tools/version" 2>/dev/null)" != "$REDOCLY_VERSION" ]; then
  echo "setup: installing @redocly/cli $REDOCLY_VERSION into $tools"
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-audit --no-fund --no-save --loglevel=error "@redocly/cli@$REDOCLY_VERSION"
  echo "$REDOCLY_VERSION" > "$tools/version"
fi
