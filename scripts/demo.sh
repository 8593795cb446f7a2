#!/usr/bin/env bash
# The demo: a 3-node namespace lab, the full pod network applied over SSH, then verified.
# Usage (as root): ./scripts/demo.sh        Leaves the lab up so you can look around.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

# the demo's own lab, beside any other (plab, the default, is yours): an earlier demo lab is replaced
name=pdemo
inv=demo-inventory.yaml
provision lab down --name "$name" >/dev/null 2>&1 || true
provision lab up --nodes 3 --name "$name" --subnet 10.213.1.0/24 --out "$inv"
echo
echo "== provision apply $inv"
provision apply "$inv"
echo
echo "== provision verify $inv"
provision verify "$inv"
echo
echo "== provision apply $inv (again: nothing changes)"
provision apply "$inv" | tail -4
cat <<EOT

(put .venv/bin on your PATH first: export PATH=\$PWD/.venv/bin:\$PATH)
The pod network is up. Look around:
  provision plan $inv                                   # what apply would change (nothing now)
  provision facts $inv                                  # each node's IP, MAC, ports, bridge, pod routes
  ip netns exec pdemo-node1 ip route                     # node1's routes to the other nodes' pods
  provision ssh $inv node2                              # a shell on node2
  provision ssh $inv node1 ip netns exec web ping -c1 10.244.3.2   # pod web@node1 -> web@node3
Tear down:
  .venv/bin/provision lab down --name pdemo
EOT
