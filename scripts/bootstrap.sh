#!/usr/bin/env bash
# Install what provisioner needs on a fresh Debian 12 machine (as root), idempotently:
# Debian packages for the lab and the tests, and a venv in .venv with the project.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(python3 python3-venv openssh-server openssh-client iproute2 iputils-ping iptables
          containernetworking-plugins ipcalc procps util-linux kmod dnsmasq-base ruby vagrant sudo
          containerd runc busybox-static podman graphviz
          # the Vagrant lab of real VMs (scripts/vm-box.sh, scripts/vm-lab.sh, tests/vm)
          libvirt-daemon-system qemu-system-x86 qemu-utils vagrant-libvirt debootstrap fdisk extlinux
          syslinux-common)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.provisioner-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
