#!/bin/sh
# bench/run_gpu.sh -- Ember on the GPU beside its peers, in one run, as one
# table (issue 5's targets):
#
#   epoch    one training epoch of the DESIGN.md CNN (Adam 1e-3) on 60000
#            Fashion-MNIST images, batch 32 and 256       (bench/cuda_bench.lua)
#            vs the same loop in PyTorch on the same GPU  (bench/cuda_torch.py)
#            target: Ember's epoch no slower (ratio Ember s / PyTorch s <= 1)
#   matmul   float32 [n,n] x [n,n], n = 1024 2048 4096 8192, TF32 off
#            vs cublasSgemm called directly               (bench/cublas_gemm.cu)
#            target: >= 0.95 of cuBLAS's GFLOP/s
#            (PyTorch's torch.matmul on a second row, for context)
#
# Usage, from the repository root:
#   sh bench/run_gpu.sh
# Environment: EMBER_FASHION_MNIST (a folder with the IDX files; default
# /usr/share/datasets/fashion-mnist; without the files both sides train on
# random data of the same shape, and the table says so), BENCH_SIZES
# (matmul sizes, default "1024 2048 4096 8192"), BENCH_LIMIT (train on the
# first N images only, for a quick run), BENCH_PYTHON (default python3),
# BENCH_DEVICE=cpu (a check of the scripts and this table on a machine
# without a GPU: small sizes, no cuBLAS).
#
# cuBLAS's peer is build/cublas_gemm.  This script builds it when nvcc is
# found (on the PATH or as /usr/local/cuda/bin/nvcc) and it is missing or
# older than its source; where there is no nvcc it must be built beforehand
# (on the development machine):
#   nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 \
#        -o build/cublas_gemm bench/cublas_gemm.cu -lcublas \
#        -Xlinker -rpath,/usr/local/cuda/lib64
#
# On the GPU machine (/work/shared/gpu/README.md: it has CUDA, nvcc, cuBLAS,
# a driver and PyTorch, but no Lua, no OpenBLAS, no Debian packages, and a
# call may carry 64 MiB: the runtime alone is 45 MB unpacked, hence a
# tarball).  On the development machine, after `make` (with nvcc):
#   sh bench/run_gpu.sh pack
# packs into build/gpu-carry/ (about 50 MB): ember-gpu.tar.gz (the runtime
# of ../shared/gpu/pack-runtime.sh, ./ember, build/ember/core.so,
# build/libember_cuda.so and build/cublas_gemm when built) and a copy of
# the Fashion-MNIST files.  Then one call of the device tool runs the GPU
# specs and the benchmarks (about 5 minutes once the machine is up):
#   run(command="tar -xzf build/gpu-carry/ember-gpu.tar.gz && source .gpu-runtime/env.sh &&
#                nvidia-smi -L && export OMP_WAIT_POLICY=passive
#                EMBER_FASHION_MNIST=build/gpu-carry/fashion-mnist &&
#                busted spec/cuda; sh bench/run_gpu.sh",
#       carry=["build/gpu-carry"], timeout_s=600)
# (OMP_WAIT_POLICY=passive keeps the CPU side of the specs from spinning,
# bench/NOTES.md; without the data folder both sides train on random data.)

cd "$(dirname "$0")/.." || exit 1

# {======================================================================
# pack: what a GPU machine needs, into build/gpu-carry (see above)
# =======================================================================
if [ "$1" = pack ]; then
  out=build/gpu-carry
  packer=${EMBER_PACK_RUNTIME:-../shared/gpu/pack-runtime.sh}
  data=${EMBER_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
  for f in ./ember build/ember/core.so build/libember_cuda.so; do
    [ -f "$f" ] || { echo "bench: $f is missing: run make (with nvcc) first" >&2; exit 1; }
  done
  [ -f "$packer" ] || { echo "bench: $packer not found (set EMBER_PACK_RUNTIME)" >&2; exit 1; }
  NVCC=$(command -v nvcc 2>/dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })
  if [ -n "$NVCC" ]; then
    "$NVCC" -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -o build/cublas_gemm \
      bench/cublas_gemm.cu -lcublas -Xlinker -rpath,/usr/local/cuda/lib64 || exit 1
  fi
  rm -rf "$out" && mkdir -p "$out" || exit 1
  rt=$(mktemp -d) || exit 1
  bash "$packer" "$rt/.gpu-runtime" ./ember build/ember/core.so build/libember_cuda.so >&2 || exit 1
  extra=""
  [ -x build/cublas_gemm ] && extra="build/cublas_gemm"
  # shellcheck disable=SC2086
  tar -czf "$out/ember-gpu.tar.gz" -C "$rt" .gpu-runtime -C "$PWD" ember build/ember/core.so \
    build/libember_cuda.so $extra || exit 1
  rm -rf "$rt"
  if ls "$data"/train-images-idx3-ubyte* >/dev/null 2>&1; then
    mkdir -p "$out/fashion-mnist" && cp "$data"/*-idx?-ubyte* "$out/fashion-mnist/" || exit 1
  else
    echo "bench: no Fashion-MNIST files in $data: the GPU machine will use random data" >&2
  fi
  du -sh "$out" >&2
  echo "bench: carry build/gpu-carry; on the device: tar -xzf build/gpu-carry/ember-gpu.tar.gz && source .gpu-runtime/env.sh && ..." >&2
  exit 0
fi
# }======================================================================

PY=${BENCH_PYTHON:-python3}
DEVICE=${BENCH_DEVICE:-cuda}
SIZES=${BENCH_SIZES:-1024 2048 4096 8192}
DATA=${EMBER_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0

if [ "$DEVICE" = cpu ]; then
  SIZES=${BENCH_SIZES:-64 128}
  BENCH_LIMIT=${BENCH_LIMIT:-640}
fi
sizes_csv=$(echo $SIZES | tr ' ' ',')

# The same data for both sides: the IDX files when they are there.
if [ -f "$DATA/train-images-idx3-ubyte.gz" ] || [ -f "$DATA/train-images-idx3-ubyte" ]; then
  data_args="--data $DATA"
else
  data_args="--random"
fi
common="$data_args --sizes $sizes_csv --device $DEVICE"
[ -n "$BENCH_LIMIT" ] && common="$common --limit $BENCH_LIMIT"

run_lua() {
  if [ -x ./ember ]; then
    ./ember "$@"
  else
    lua5.4 -e 'package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
               package.cpath = "build/?.so;" .. package.cpath' "$@"
  fi
}

# cuBLAS's peer: build it where nvcc is, else it must be there already.
cublas=build/cublas_gemm
if [ "$DEVICE" = cuda ]; then
  NVCC=$(command -v nvcc 2>/dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })
  if [ -n "$NVCC" ] && { [ ! -x "$cublas" ] || [ bench/cublas_gemm.cu -nt "$cublas" ]; }; then
    mkdir -p build
    echo "bench: building $cublas with $NVCC" >&2
    "$NVCC" -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -o "$cublas" \
      bench/cublas_gemm.cu -lcublas -Xlinker -rpath,"$(dirname "$(dirname "$NVCC")")/lib64" >&2 ||
      { echo "bench: building $cublas failed" >&2; status=1; }
  fi
  [ -x "$cublas" ] || echo "bench: $cublas is missing and there is no nvcc to build it (see the header)" >&2
fi

echo "bench: Ember (bench/cuda_bench.lua $common) ..." >&2
# shellcheck disable=SC2086
run_lua bench/cuda_bench.lua $common >"$tmp/ember" ||
  { echo "bench: bench/cuda_bench.lua failed" >&2; status=1; }
echo "bench: PyTorch ($PY bench/cuda_torch.py $common) ..." >&2
# shellcheck disable=SC2086
"$PY" bench/cuda_torch.py $common >"$tmp/torch" ||
  { echo "bench: bench/cuda_torch.py failed (exit 3: no torch)" >&2; status=1; }
if [ "$DEVICE" = cuda ] && [ -x "$cublas" ]; then
  echo "bench: cuBLAS ($cublas $SIZES) ..." >&2
  # shellcheck disable=SC2086
  "$cublas" $SIZES >"$tmp/cublas" || { echo "bench: $cublas failed" >&2; status=1; }
fi
touch "$tmp/ember" "$tmp/torch" "$tmp/cublas"

# One awk program reads the three outputs (tagged by file name) and prints
# the table.  Lines starting with '#' carry versions, the device and the data.
awk -v sizes="$SIZES" -v py="$PY" -v device="$DEVICE" '
  FILENAME ~ /ember$/  && /^# data/   { data = substr($0, 8); next }
  FILENAME ~ /torch$/  && /^# torch/  { torchv = $3; gpu = $4; next }
  FILENAME ~ /torch$/  && /^# data/   { tdata = substr($0, 8); next }
  FILENAME ~ /cublas$/ && /^# cublas/ { cublasv = $3; gpu = $4; next }
  /^#/ { next }
  FILENAME ~ /ember$/  { e[$1] = $2; e2[$1] = $3; next }
  FILENAME ~ /torch$/  { t[$1] = $2; t2[$1] = $3; next }
  FILENAME ~ /cublas$/ { c[$1] = $2; next }
  # One row: name, Ember figure, peer figure, target on Ember/peer and
  # whether lower ("lo") or higher ("hi") is better ("info": no target).
  function row(name, ev, pv, target, better,   ratio, verdict) {
    if (ev == "") ev = "failed"
    if (pv == "") pv = "-"
    ratio = "-"; verdict = ""
    if (ev != "failed" && pv != "-" && pv + 0 > 0) {
      ratio = ev / pv
      if (better == "hi") verdict = sprintf(">= %.2f %s", target, ratio >= target ? "met" : "MISSED")
      if (better == "lo") verdict = sprintf("<= %.2f %s", target, ratio <= target ? "met" : "MISSED")
      if (better == "info") verdict = "(context)"
      ratio = sprintf("%.3f", ratio)
    }
    printf "%-30s | %10s | %10s | %7s | %s\n", name, ev, pv, ratio, verdict
  }
  END {
    printf "\nEmber on %s (%s); TF32 off on every side\n", (gpu == "" ? "?" : gpu), device
    printf "data: %s\n", (data == "" ? "?" : data)
    if (tdata != "" && tdata != data) printf "WARNING: PyTorch used other data: %s\n", tdata
    printf "peers: PyTorch %s (%s); cuBLAS %s via cublasSgemm (build/cublas_gemm)\n\n",
           (torchv == "" ? "not run" : torchv), py, (cublasv == "" ? "not run" : cublasv)
    printf "%-30s | %10s | %10s | %7s | %s\n", "case", "ember", "peer", "ratio", "target"
    printf "%-30s-+-%10s-+-%10s-+-%7s-+-%s\n", "------------------------------", "----------", "----------", "-------", "------"
    # the batch sizes either side reported (32 and 256 when neither did)
    for (k in e) if (k ~ /^epoch_bs/ && !(k in seen)) { seen[k] = 1; bss[++nb] = substr(k, 9) + 0 }
    for (k in t) if (k ~ /^epoch_bs/ && !(k in seen)) { seen[k] = 1; bss[++nb] = substr(k, 9) + 0 }
    if (nb == 0) { bss[1] = 32; bss[2] = 256; nb = 2 }
    for (i = 2; i <= nb; i++) { v = bss[i]; for (j = i - 1; j >= 1 && bss[j] > v; j--) bss[j + 1] = bss[j]; bss[j + 1] = v }
    for (i = 1; i <= nb; i++) {
      k = "epoch_bs" bss[i]
      row(sprintf("epoch bs%-4d s (PyTorch)", bss[i]), e[k], t[k], 1.0, "lo")
    }
    for (i = 1; i <= nb; i++) {
      k = "epoch_bs" bss[i]
      row(sprintf("images/s bs%-4d (PyTorch)", bss[i]), e2[k], t2[k], 0, "info")
    }
    for (i = 1; i <= nb; i++) {
      k = "fit_bs" bss[i]
      if (k in e) row(sprintf("model:fit epoch bs%-4d s", bss[i]), e[k], "", 0, "info")
    }
    n = split(sizes, ns, " ")
    for (i = 1; i <= n; i++) {
      k = "matmul_" ns[i]
      row(sprintf("matmul %-5d GFLOP/s (cuBLAS)", ns[i]), e[k], c[k], 0.95, "hi")
    }
    for (i = 1; i <= n; i++) {
      k = "matmul_" ns[i]
      row(sprintf("matmul %-5d GFLOP/s (torch)", ns[i]), e[k], t[k], 0, "info")
    }
    printf "\n  epoch: ratio = Ember seconds / PyTorch seconds (lower is better; target <= 1)\n"
    printf "  matmul: ratio = Ember GFLOP/s / cuBLAS GFLOP/s (higher is better; target >= 0.95)\n"
    printf "  model:fit adds the per-batch loss and accuracy its progress reads back (no peer)\n"
  }
' "$tmp/ember" "$tmp/torch" "$tmp/cublas"

exit $status
