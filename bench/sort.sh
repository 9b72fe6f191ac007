#!/bin/sh
# bench/sort.sh -- sorting and selection, Ember beside PyTorch in one run:
# bench/sort_bench.lua and bench/sort_torch.py on the same cases, the same
# thread count (EMBER_NUM_THREADS, default the online cores; torch gets
# torch.set_num_threads of it).  Prints "case  ember ms  torch ms  ratio"
# (ratio = ember / torch: below 1 Ember is faster).  Also bench/run.sh's
# "sort" group.  Run from the repository root after `make`.
set -e
PY=${BENCH_PYTHON:-/usr/bin/python3}
threads=${EMBER_NUM_THREADS:-$(getconf _NPROCESSORS_ONLN)}
export EMBER_NUM_THREADS=$threads OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -x ./ember ]; then ./ember bench/sort_bench.lua >"$tmp/ember"
else LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;" lua5.4 bench/sort_bench.lua >"$tmp/ember"; fi
(cd bench && "$PY" sort_torch.py) >"$tmp/torch" || echo "# torch unavailable" >"$tmp/torch"
echo "sorting and selection, float32, $threads threads ($(grep '^# torch' "$tmp/torch" | cut -c3-))"
printf '%-16s %10s %10s %7s\n' case "ember ms" "torch ms" ratio
while read -r name ms; do
  peer=$(awk -v n="$name" '$1 == n { print $2 }' "$tmp/torch")
  if [ -n "$peer" ]; then
    printf '%-16s %10.2f %10.2f %7.2f\n' "$name" "$ms" "$peer" "$(echo "$ms $peer" | awk '{ print $1 / $2 }')"
  else
    printf '%-16s %10.2f %10s %7s\n' "$name" "$ms" - -
  fi
done <"$tmp/ember"
