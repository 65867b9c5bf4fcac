#!/usr/bin/env bash
# Installs the Debian packages mdnstab needs, only those missing; does nothing
# (and needs no network) when everything is there. Idempotent.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libeigen3-dev libboost-dev libcli11-dev libgtest-dev libgmock-dev libfmt-dev
  nlohmann-json3-dev libtomlplusplus-dev libtbb-dev
  python3-numpy python3-scipy python3-cvxopt gnuplot-nox
  python3-matplotlib python3-nbclient python3-nbformat python3-ipykernel chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
