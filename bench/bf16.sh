#!/bin/sh
# bench/bf16.sh -- bfloat16 matmul (issue 19's target: Ember's bfloat16 at
# least 1.8x Ember's float32 at 1024..4096 on an AVX512-BF16 CPU), Ember
# beside PyTorch in one run: bench/bf16_matmul.lua and
# bench/bf16_matmul_torch.py, the same thread count (EMBER_NUM_THREADS,
# default the online cores).  Prints GFLOP/s of each and the ratio
# bf16 / f32 for each side (higher is better).  Also bench/run.sh's "bf16"
# group.  Run from the repository root after `make`.
set -e
PY=${BENCH_PYTHON:-/usr/bin/python3}
threads=${EMBER_NUM_THREADS:-$(getconf _NPROCESSORS_ONLN)}
export EMBER_NUM_THREADS=$threads OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {   # $1: EMBER_BF16_GEMM (core/cpu/gemm_half.c's path), then the sizes
  p=$1; shift
  if [ -x ./ember ]; then EMBER_BF16_GEMM=$p ./ember bench/bf16_matmul.lua "$@"
  else EMBER_BF16_GEMM=$p LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;" lua5.4 bench/bf16_matmul.lua "$@"; fi
}
run fma "$@" >"$tmp/ember"
run dpbf16 "$@" >"$tmp/dp"
(cd bench && OPENBLAS_NUM_THREADS=1 "$PY" bf16_matmul_torch.py "$@") >"$tmp/torch" || echo "# torch unavailable" >"$tmp/torch"
flags=$(grep -o 'avx512_bf16\|amx_bf16' /proc/cpuinfo 2>/dev/null | sort -u | tr '\n' ' ')
echo "bfloat16 matmul [n,n] x [n,n], GFLOP/s, $threads threads, CPU: ${flags:-no AVX512-BF16} ($(grep '^# torch' "$tmp/torch" | cut -c3-))"
echo "(ember bf16: the default FMA kernel on widened panels; dpbf16: EMBER_BF16_GEMM=dpbf16, VDPBF16PS; f32: OpenBLAS sgemm, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; ratio: bf16 / f32, target >= 1.8)"
printf '%-6s %10s %10s %10s %8s %10s %10s %8s\n' n "ember bf16" "dpbf16" "ember f32" ratio "torch bf16" "torch f32" ratio
grep -v '^#' "$tmp/ember" | while read -r n eb ef; do
  dp=$(awk -v n="$n" '$1 == n { print $2 }' "$tmp/dp")
  set -- $(awk -v n="$n" '$1 == n { print $2, $3 }' "$tmp/torch")
  tb=${1:--} tf=${2:--}
  tr=$( [ "$tb" != - ] && echo "$tb $tf" | awk '{ printf "%.2f", $1 / $2 }' || echo -)
  printf '%-6s %10s %10s %10s %8.2f %10s %10s %8s\n' "$n" "$eb" "${dp:--}" "$ef" "$(echo "$eb $ef" | awk '{ print $1 / $2 }')" "$tb" "$tf" "$tr"
done
