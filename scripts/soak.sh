#!/usr/bin/env bash
# The whole suite N times in a row on a loaded machine, each time on a fresh clone, stopping at the first failure.
# Usage (as root): scripts/soak.sh [N=5] [REPO=this checkout]
# The load (scripts/load.py) runs beside it the whole time: 0.6 of a core busy, 4 GiB held and touched, 64 MiB
# written and fsynced every 5 s. Logs: /tmp/provisioner-soak/{log,runN.out}.
set -uo pipefail
n=${1:-5}
repo=${2:-$(cd "$(dirname "$0")/.." && pwd)}
out=/tmp/provisioner-soak
mkdir -p "$out"
rev=$(git -C "$repo" rev-parse HEAD) || exit 2
echo "commit ${rev:0:7}, $n run(s), started $(date +%T)" > "$out/log"
python3 "$(dirname "$0")/load.py" & load=$!
trap 'kill $load 2>/dev/null' EXIT
for i in $(seq 1 "$n"); do
  rm -rf "$out/ci" && git clone -q "$repo" "$out/ci" && git -C "$out/ci" checkout -q "$rev" || exit 2
  start=$(date +%s)
  (cd "$out/ci" && CI=true bash .ci/run) > "$out/run$i.out" 2>&1
  rc=$?
  echo "run $i: exit $rc in $(( $(date +%s) - start )) s, $(tail -1 "$out/run$i.out"), load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/log"
  [ $rc = 0 ] || { echo "stopped at run $i" >> "$out/log"; exit 1; }
done
echo "all $n run(s) passed, $(date +%T)" >> "$out/log"
