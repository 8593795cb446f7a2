#!/usr/bin/env bash
# Build a Vagrant box (libvirt provider) of Debian 12 offline, from Debian packages only,
# with what a node needs when its VM has no way out: containerd, runc, the CNI plugins,
# podman and busybox (a container image made on the node), python3 (verify's TCP check), ipvsadm (services in
# kube-proxy's ipvs mode).
#
#   ./scripts/vm-box.sh            # prints the path of the .box file (built once, then cached)
#   vagrant box add --name provisioner/debian12 "$(./scripts/vm-box.sh)"
#
# The box is cached under $PROVISION_BOX_CACHE (default /var/cache/provisioner) by a
# hash of this script: change the script and the next call builds a new one.
# Needs root, debootstrap, qemu-utils, fdisk, extlinux (scripts/bootstrap.sh --vm installs them).
set -euo pipefail

CACHE=${PROVISION_BOX_CACHE:-/var/cache/provisioner}
HASH=$(sha256sum "$0" | cut -c1-12)
BOX="$CACHE/debian12-provisioner-$HASH.box"
if [ -s "$BOX" ]; then
  echo "$BOX"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "vm-box: needs root (debootstrap, loop devices)" >&2; exit 1; }
mkdir -p "$CACHE"

# the mirror this machine already uses (no other address is reachable)
MIRROR=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
         | head -n1 | tr -d " " || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
KEY=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -n1 || true)
[ -n "$KEY" ] || { echo "vm-box: vagrant's insecure public key not found (install Debian's vagrant)" >&2; exit 1; }

WORK=$(mktemp -d "$CACHE/build.XXXXXX")
LOOP=""
cleanup() {
  set +e
  mountpoint -q "$WORK/mnt" && umount -l "$WORK/mnt"
  [ -n "$LOOP" ] && losetup -d "$LOOP"
  rm -rf "$WORK"
}
trap cleanup EXIT

PACKAGES=systemd,systemd-sysv,dbus,libpam-systemd,udev,openssh-server,sudo,linux-image-amd64,\
ifupdown,isc-dhcp-client,iproute2,iputils-ping,iptables,kmod,procps,netbase,ca-certificates,\
containerd,runc,containernetworking-plugins,podman,busybox-static,python3,ipvsadm
echo "vm-box: debootstrap from $MIRROR" >&2
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$WORK/root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }

R="$WORK/root"
echo "debian" > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n' > "$R/etc/hosts"
printf 'LABEL=root / ext4 errors=remount-ro 0 1\n' > "$R/etc/fstab"
cat > "$R/etc/network/interfaces" <<'EOF'
source /etc/network/interfaces.d/*
auto lo
iface lo inet loopback
allow-hotplug eth0
iface eth0 inet dhcp
EOF
# systemd makes a new machine id at first boot: each VM its own DHCP client id
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
# the vagrant user: the insecure key (Vagrant swaps it for a fresh one at first `up`), sudo without password
chroot "$R" useradd -m -s /bin/bash vagrant
install -d -m 700 -o 1000 -g 1000 "$R/home/vagrant/.ssh"
install -m 600 -o 1000 -g 1000 "$KEY" "$R/home/vagrant/.ssh/authorized_keys"
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' > "$R/etc/sudoers.d/vagrant"
chmod 0440 "$R/etc/sudoers.d/vagrant"
# host keys: none in the box (each VM makes its own), ed25519 only (RSA generation takes over a minute emulated)
rm -f "$R"/etc/ssh/ssh_host_*
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nUseDNS no\n' > "$R/etc/ssh/sshd_config.d/provisioner-box.conf"
cat > "$R/etc/systemd/system/ssh-hostkey.service" <<'EOF'
[Unit]
Description=Make this VM's own SSH host key
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
[Install]
WantedBy=multi-user.target
EOF
ln -s /etc/systemd/system/ssh-hostkey.service "$R/etc/systemd/system/multi-user.target.wants/ssh-hostkey.service"
chroot "$R" apt-get clean
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/log/*.log

echo "vm-box: disk image" >&2
# one bootable partition from 1 MiB; a loop device maps that partition by its offset (no partition
# scanning needed) and extlinux boots it: syslinux's MBR code, the loader inside the file system
IMG="$WORK/box.img.raw"
truncate -s 8G "$IMG"
echo 'start=2048, type=83, bootable' | sfdisk -q "$IMG"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$IMG" bs=440 count=1 conv=notrunc status=none
LOOP=$(losetup -f --show -o $((2048 * 512)) --sizelimit $(( (8 * 1024 - 1) * 1024 * 1024 )) "$IMG")
mkfs.ext4 -q -L root -O ^64bit,^metadata_csum "$LOOP"
mkdir "$WORK/mnt"
mount "$LOOP" "$WORK/mnt"
tar -C "$R" -cf - . | tar -C "$WORK/mnt" -xpf -
KVER=$(ls "$WORK/mnt/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -n1)
mkdir -p "$WORK/mnt/boot/extlinux"
cat > "$WORK/mnt/boot/extlinux/extlinux.conf" <<EOF
DEFAULT debian
TIMEOUT 1
SERIAL 0 115200
LABEL debian
  LINUX /boot/vmlinuz-$KVER
  INITRD /boot/initrd.img-$KVER
  APPEND root=LABEL=root ro console=tty0 console=ttyS0,115200 net.ifnames=0 biosdevname=0 quiet
EOF
extlinux --install "$WORK/mnt/boot/extlinux" >/dev/null
umount "$WORK/mnt"
losetup -d "$LOOP"
LOOP=""

echo "vm-box: qcow2 and box" >&2
qemu-img convert -O qcow2 "$IMG" "$WORK/box.img"
rm -f "$IMG"
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": 8}\n' > "$WORK/metadata.json"
tar -C "$WORK" -cf "$BOX.tmp" metadata.json box.img
mv "$BOX.tmp" "$BOX"
echo "$BOX"
