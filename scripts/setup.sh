#!/usr/bin/env bash
# Installs the Debian packages apfsim needs, only those missing. Idempotent; runs
# `apt-get update` only when something must be installed. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libunicorn-dev libsystemc-dev libxml2-dev libxml2-utils libbenchmark-dev
  libcmocka-dev libjansson-dev libcapstone-dev libssl-dev
  gnuplot-nox clang python3
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present" >&2
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
