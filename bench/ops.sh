#!/bin/sh
# bench/ops.sh -- issue 17's figures in one run: cumsum/cumprod/cummax
# (bench/scan_bench.lua vs scan_torch.py), sort/argsort/topk
# (bench/sort.sh), multinomial (bench/multinomial_bench.lua, which runs
# multinomial_torch.py itself) and slicing assignment (bench/slicing.sh),
# Ember beside PyTorch on 1-10M elements, the same thread count on both
# sides (EMBER_NUM_THREADS, default the online cores).  Prints one table,
# "group case ember_ms torch_ms ratio" (ratio = ember / torch), then names
# every case slower than 1.5x PyTorch, the issue's bound, and exits 1 if
# there is one (BENCH_BOUND overrides the bound).  Run from the repository
# root after `make`; bench/run.sh runs it as its "ops" group.
set -e
cd "$(dirname "$0")/.."
PY=${BENCH_PYTHON:-/usr/bin/python3}
threads=${EMBER_NUM_THREADS:-$(getconf _NPROCESSORS_ONLN)}
bound=${BENCH_BOUND:-1.5}
export EMBER_NUM_THREADS=$threads OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# scan: two "name ms" lists, paired by name
./ember bench/scan_bench.lua cpu >"$tmp/scan_e"
"$PY" bench/scan_torch.py cpu >"$tmp/scan_t" 2>/dev/null || : >"$tmp/scan_t"
awk 'FNR == NR { if ($1 !~ /^#/) t[$1] = $2; next }
     $1 !~ /^#/ { print "scan", $1, $2, ($1 in t) ? t[$1] : "-" }' \
  "$tmp/scan_t" "$tmp/scan_e" >"$tmp/rows"
# sort: "case ember torch ratio" after two header lines
sh bench/sort.sh | awk 'NR > 2 { print "sort", $1, $2, $3 }' >>"$tmp/rows"
# multinomial: "case ember torch ratio" after a # header
./ember bench/multinomial_bench.lua | awk '$1 !~ /^#/ { print "multinomial", $1, $2, $3 }' >>"$tmp/rows"
# slicing: "case size ember torch ratio" after a header line (us for reads)
sh bench/slicing.sh "$threads" |
  awk 'NR > 1 && $1 !~ /_small$/ { print "slicing", $1 "_" $2, $3, $4 }' >>"$tmp/rows"

echo "# issue 17 ops, float32, $threads threads, ember vs $("$PY" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null || echo "no torch")"
awk -v bound="$bound" '
  { r = ($4 == "-" || $4 == 0) ? "-" : sprintf("%.2f", $3 / $4)
    printf "%-12s %-24s %10.3f %10s %6s\n", $1, $2, $3, $4, r
    if (r != "-" && r + 0 > bound + 0) slow = slow " " $1 "/" $2 "(" r "x)" }
  END { if (slow != "") { print "# slower than " bound "x PyTorch:" slow; exit 1 }
        print "# no case slower than " bound "x PyTorch" }' "$tmp/rows"
