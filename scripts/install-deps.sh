#!/usr/bin/env bash
# Installs the Debian 12 packages Strata builds and tests with. Idempotent: skips apt when every
# package is already installed. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build pkg-config ccache git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev librocksdb-dev prometheus-cpp-dev libxxhash-dev libssl-dev
  libgtest-dev libgmock-dev
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev
  python3 python3-zmq python3-msgpack python3-redis
  python3-grpcio python3-protobuf python3-xxhash
  openssl
  redis-server redis-tools rocksdb-tools
  gnuplot-nox
  # scripts/fuzz.sh: libFuzzer targets need clang and its runtime libraries (libFuzzer, ASan).
  clang libclang-rt-14-dev
  # scripts/check-helm.sh: the chart renderer (Go + sprig + yaml.v3 sources) and its validator
  # (Node.js; npm below).
  golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev nodejs
)
# Debian packages npm apart from nodejs (18); a NodeSource nodejs already ships npm and conflicts
# with Debian's npm package, so it is added only when no npm is on the PATH.
if ! command -v npm >/dev/null 2>&1; then PACKAGES+=(npm); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
