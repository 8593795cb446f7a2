#!/usr/bin/env bash
# The Vagrant lab of real VMs (libvirt) on a machine like this one, and everything it needs
# started and removed again: the offline box, libvirtd (when no libvirtd runs yet), the VMs,
# their networks and volumes.
#
#   ./scripts/vm-lab.sh up   [INVENTORY [DIR]]   # VMs up; writes DIR/lab.yaml for provision
#   ./scripts/vm-lab.sh down [DIR]               # everything up made, removed
#
# INVENTORY defaults to inventories/vagrant-libvirt.yaml, DIR to /run/provisioner-vmlab/<cluster>.
# A libvirtd started here runs QEMU as root (libvirt's own user cannot open /dev/kvm here and
# re-probes QEMU on every call) in a private mount namespace, where its qemu.conf and an empty
# network autostart dir are bind-mounted: no system file is changed. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
PROVISION=${PROVISION:-$REPO/.venv/bin/provision}
BOX_NAME=provisioner/debian12

cluster_of() { "$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["cluster"]["name"])' "$1"; }

libvirt_up() {  # DIR: start virtlogd and libvirtd unless a libvirtd already answers
  local dir=$1
  if virsh -c qemu:///system uri >/dev/null 2>&1; then
    echo "vm-lab: using the libvirtd that runs already" >&2
    return 0
  fi
  [ -x /usr/sbin/libvirtd ] || { echo "vm-lab: libvirtd is not installed (scripts/bootstrap.sh installs it)" >&2; exit 1; }
  iptables-save > "$dir/iptables.before" 2>/dev/null || true
  cp /etc/libvirt/qemu.conf "$dir/qemu.conf"
  printf '\n# provisioner vm-lab: QEMU as root\nuser = "root"\ngroup = "root"\n' >> "$dir/qemu.conf"
  mkdir -p "$dir/no-autostart"
  # -d: each daemonises inside the private mount namespace, which lives on with it
  unshare --mount --propagation private sh -c '
    mount --bind "$1/qemu.conf" /etc/libvirt/qemu.conf
    mount --bind "$1/no-autostart" /etc/libvirt/qemu/networks/autostart
    virtlogd -d --pid-file "$1/virtlogd.pid"
    libvirtd -d --pid-file "$1/libvirtd.pid"' sh "$dir"
  touch "$dir/started-libvirtd"
  for _ in $(seq 1 100); do virsh -c qemu:///system uri >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "vm-lab: libvirtd did not answer" >&2
  exit 1
}

libvirt_down() {  # DIR: stop what libvirt_up started, and take libvirt's chains away when they are empty
  local dir=$1 pid
  [ -f "$dir/started-libvirtd" ] || return 0
  for d in libvirtd virtlogd; do
    if [ -f "$dir/$d.pid" ] && pid=$(cat "$dir/$d.pid") && kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
  done
  for table_chain in filter:INPUT:LIBVIRT_INP filter:OUTPUT:LIBVIRT_OUT filter:FORWARD:LIBVIRT_FWX \
                     filter:FORWARD:LIBVIRT_FWI filter:FORWARD:LIBVIRT_FWO nat:POSTROUTING:LIBVIRT_PRT \
                     mangle:POSTROUTING:LIBVIRT_PRT; do
    IFS=: read -r table parent chain <<<"$table_chain"
    grep -q -- "^-N $chain\$" <(iptables -t "$table" -S 2>/dev/null) || continue
    grep -q "^:$chain " "$dir/iptables.before" 2>/dev/null && continue  # someone else's, from before
    [ "$(iptables -t "$table" -S "$chain" | wc -l)" -le 1 ] || continue  # not empty: leave it
    iptables -t "$table" -D "$parent" -j "$chain" 2>/dev/null || true
    iptables -t "$table" -X "$chain" 2>/dev/null || true
  done
  rm -f "$dir/started-libvirtd"
}

vagrant_env() {  # INVENTORY DIR
  export PROVISION_INVENTORY=$1 VAGRANT_HOME=$2/vagrant.d VAGRANT_DOTFILE_PATH=$2/dot VAGRANT_CWD=$REPO
  export VAGRANT_DEFAULT_PROVIDER=libvirt VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_NO_COLOR=1
}

up() {
  local inv dir box t0
  inv=$(realpath "${1:-inventories/vagrant-libvirt.yaml}")
  dir=${2:-/run/provisioner-vmlab/$(cluster_of "$inv")}
  if [ -e "$dir" ]; then
    echo "vm-lab: $dir exists: a lab is up there, or was left by a run that was killed; run: $0 down $dir" >&2
    exit 2
  fi
  mkdir -p "$dir"
  dir=$(realpath "$dir")
  cp "$inv" "$dir/inventory.yaml"  # `down` needs the same one, whatever happens to the user's file
  t0=$SECONDS
  box=$(./scripts/vm-box.sh)
  echo "vm-lab: box $box ($((SECONDS - t0)) s)" >&2
  libvirt_up "$dir"
  vagrant_env "$dir/inventory.yaml" "$dir"
  # vagrant-libvirt defines a storage pool "default" where there is none: then it is ours to remove
  virsh -c qemu:///system pool-info default >/dev/null 2>&1 || touch "$dir/created-pool"
  if ! vagrant box list 2>/dev/null | grep -q "^$BOX_NAME "; then
    vagrant box add --force --name "$BOX_NAME" "$box" 2>&1 | grep -v 'Progress:' >&2
  fi
  t0=$SECONDS
  vagrant up --provider libvirt >"$dir/up.log" 2>&1 || { tail -n 40 "$dir/up.log" >&2; exit 1; }
  echo "vm-lab: vagrant up $((SECONDS - t0)) s" >&2
  vagrant ssh-config > "$dir/ssh-config"
  "$PROVISION" lab vagrant-inventory --inventory "$dir/inventory.yaml" --ssh-config "$dir/ssh-config" \
    --out "$dir/lab.yaml" >&2
  echo "$dir/lab.yaml"
}

down() {
  local dir=${1:-} cluster
  [ -n "$dir" ] || { echo "usage: vm-lab.sh down DIR" >&2; exit 2; }
  [ -d "$dir" ] || return 0
  if [ -f "$dir/inventory.yaml" ] && virsh -c qemu:///system uri >/dev/null 2>&1; then
    cluster=$(cluster_of "$dir/inventory.yaml")
    vagrant_env "$dir/inventory.yaml" "$dir"
    vagrant destroy -f >"$dir/destroy.log" 2>&1 || true
    # whatever vagrant left of this lab, by the names the Vagrantfile gives it
    for dom in $(virsh -c qemu:///system list --all --name | grep "^$cluster-" || true); do
      virsh -c qemu:///system destroy "$dom" >/dev/null 2>&1 || true
      virsh -c qemu:///system undefine "$dom" --remove-all-storage >/dev/null 2>&1 || true
    done
    for net in "$cluster-mgmt" "$cluster-nodes"; do
      virsh -c qemu:///system net-destroy "$net" >/dev/null 2>&1 || true
      virsh -c qemu:///system net-undefine "$net" >/dev/null 2>&1 || true
    done
    # libvirt's copy of the box (vagrant box remove leaves it), and the pool if vagrant made it
    for vol in $(virsh -c qemu:///system vol-list default 2>/dev/null \
                 | awk '$1 ~ /^provisioner-VAGRANTSLASH-debian12_vagrant_box_image/ {print $1}'); do
      virsh -c qemu:///system vol-delete --pool default "$vol" >/dev/null 2>&1 || true
    done
    if [ -f "$dir/created-pool" ]; then
      virsh -c qemu:///system pool-destroy default >/dev/null 2>&1 || true
      virsh -c qemu:///system pool-undefine default >/dev/null 2>&1 || true
    fi
  fi
  libvirt_down "$dir"
  rm -rf "$dir"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) shift; down "$@" ;;
  *) echo "usage: vm-lab.sh up [INVENTORY [DIR]] | down DIR" >&2; exit 2 ;;
esac
