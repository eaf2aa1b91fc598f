#!/usr/bin/env bash
# Installs the Debian packages the project needs, only when some are missing.
# Usage: scripts/deps.sh [extra-package...]
# Sourced or run; it is quick (one dpkg-query) when everything is there.
set -euo pipefail

base=(meson ninja-build pkg-config gcc libc6-dev libuv1-dev libxxhash-dev libssl-dev openssl
  openssh-client check python3 python3-cryptography scdoc groff-base
  bash-completion)
want=("${base[@]}" "$@")

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when an install fails without it (a fresh
# machine has none; a warm one need not wait for the network).
if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
