#!/usr/bin/env bash
# Makes WebGPU available to Node on a bare Debian machine without a GPU.
# Dawn rejects bookworm's Mesa 22 lavapipe, so Mesa 25 comes from bookworm-backports.
# Does nothing when a Vulkan driver is already installed.
set -euo pipefail

have_driver() {
  ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/nvidia/share/vulkan/icd.d/*.json >/dev/null 2>&1 \
    && ldconfig -p | grep -q 'libvulkan\.so\.1'
}

if have_driver; then
  echo "setup-webgpu: a Vulkan driver is present; nothing to install"
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "setup-webgpu: no Vulkan driver found and no apt-get; install Mesa >= 24 (lavapipe) and libvulkan1 by hand" >&2
  exit 1
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
list=/etc/apt/sources.list.d/backports.list
if [ "$codename" = "bookworm" ] && ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee "$list" >/dev/null
fi
$SUDO apt-get update -qq
if [ "$codename" = "bookworm" ]; then
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1
else
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1
fi
echo "setup-webgpu: installed Mesa lavapipe"
