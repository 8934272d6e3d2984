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
  redis-server redis-tools rocksdb-tools
  gnuplot-nox
)

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
