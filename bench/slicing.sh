#!/bin/sh
# bench/slicing.sh [threads] -- bench/slicing_bench.lua and its PyTorch peer
# bench/slicing_torch.py in one run with the same thread count (default 1);
# prints case, size, ember, torch (ms; us for the small reads) and the
# ratio ember / torch.
set -e
cd "$(dirname "$0")/.."
threads=${1:-1}
PY=${BENCH_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
OMP_NUM_THREADS=$threads ./ember bench/slicing_bench.lua "$threads" >"$tmp/ember"
(cd bench && OMP_NUM_THREADS=$threads "$PY" slicing_torch.py "$threads") >"$tmp/torch"
printf '%-20s %-4s %10s %10s %7s\n' case size ember torch ratio
paste -d' ' "$tmp/ember" "$tmp/torch" |
  awk '{ printf "%-20s %-4s %10.4f %10.4f %7.2f\n", $1, $2, $3, $6, $3 / $6 }'
