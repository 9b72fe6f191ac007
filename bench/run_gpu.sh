#!/bin/sh
# bench/run_gpu.sh -- the GPU run in one command: the GPU specs, then Ember
# on the GPU beside its peers as one table (issue 5's targets), with a
# timestamp per phase, in under 6 minutes on an H100 (issue 16 item 8).
#
#   specs    busted spec/cuda with EMBER_REQUIRE_CUDA=1 (a plugin that does
#            not load is a failure, not a column of pending tests)
#   epoch    one training epoch of the DESIGN.md CNN (Adam 1e-3) on 60000
#            Fashion-MNIST images, batch 32 and 256       (bench/cuda_bench.lua)
#            vs the same loop in PyTorch on the same GPU  (bench/cuda_torch.py)
#            target: Ember's epoch no slower (ratio Ember s / PyTorch s <= 1)
#   matmul   float32 [n,n] x [n,n], n = 1024 2048 4096 8192, TF32 off
#            vs cublasSgemm called directly               (bench/cublas_gemm.cu)
#            target: >= 0.95 of cuBLAS's GFLOP/s
#            (PyTorch's torch.matmul on a second row, for context)
#
# Exit status: 0 only when every spec passed (and busted said so: "N
# passed, 0 failed" with N > 0) and every figure of the table is there; 1
# otherwise (a failed spec, a phase that failed or ran past its budget, a
# missing figure).  Each phase runs under `timeout` with its own budget.
#
# Budget (seconds; BENCH_<PHASE>_TIMEOUT overrides), from what the
# stand-in measures here and the sizes:
#   specs  140  spec/cuda on the stand-in (both sides on the CPU, 2 cores)
#               took 63 s, 175 s with the cores shared by other jobs
#               (ops_spec 147 s: ~1500 small parity checks, training_spec
#               26 s for 200 steps, the rest 1 s); on the GPU machine only
#               the CPU side is on the CPU, with 16 cores: est. 30-70 s
#   ember  100  4 epochs of 60000 images (bs 32 and 256, timed loop and
#               model:fit: 2 x 1875 steps of 32, 2 x 235 of 256) at 1-3 ms a step
#               of 32 (host-bound, ~100 kernels a step): est. 15-40 s; matmul 4
#               sizes x ~1.5 s; the data, unpacked once, ~2 s
#   torch   70  import torch ~10 s, the same epochs and matmuls: est. 30 s
#   cublas  25  4 sizes: est. 5 s
# 335 s in all at the worst, 6 minutes with the start; nothing is
# shortened by default (EMBER_TRAIN_STEPS, BENCH_LIMIT shorten the specs'
# training and the epochs; the run prints what it shortened).
#
# Usage, from the repository root:
#   sh bench/run_gpu.sh            the run (specs, then the benchmarks)
#   sh bench/run_gpu.sh pack       on the development machine: the carry
# Environment: EMBER_FASHION_MNIST (a folder with the IDX files; default
# /usr/share/datasets/fashion-mnist, or build/gpu-carry/fashion-mnist when
# it is there; without the files both sides train on random data of the
# same shape, and the table says so), BENCH_SIZES (matmul sizes, default
# "1024 2048 4096 8192"), BENCH_LIMIT (train on the first N images only),
# BENCH_PYTHON (default python3), BENCH_SPECS=0 (skip the specs),
# BENCH_PEERS=0 (skip PyTorch and cuBLAS: their figures read "skipped"),
# BENCH_DEVICE=cpu (a check of this script and its table on a machine
# without a GPU: small sizes, no cuBLAS; the specs then need the stand-in,
# EMBER_CUDA_PLUGIN=$PWD/build/libember_fakecuda.so, or they fail).
#
# The GPU machine (/work/shared/gpu/README.md) has CUDA, nvcc, cuBLAS, a
# driver and PyTorch, but no Lua, no OpenBLAS, no busted; a device call
# carries at most 64 MiB.  On the development machine:
#   sh bench/run_gpu.sh pack
# runs `make clean` and `make` (the CUDA plugin needs nvcc), checks with
# ldd that OpenBLAS's OpenMP build is linked (the CPU side of the parity
# specs is several times slower otherwise), and packs into build/gpu-carry/
# ember-gpu.tar.gz (the runtime of ../shared/gpu/pack-runtime.sh, ./ember,
# build/ember/core.so, build/libember_cuda.so, build/cublas_gemm) and a
# copy of the Fashion-MNIST files; it fails when the carry and the tracked
# tree together pass 64 MiB.  Then the exact device command (the device
# tool's run; nothing else to prepare there):
#   run(command="tar -xzf build/gpu-carry/ember-gpu.tar.gz && source .gpu-runtime/env.sh && nvidia-smi -L && sh bench/run_gpu.sh",
#       carry=["build/gpu-carry"], timeout_s=420)
# For a first run of new kernels add EMBER_CUDA_SYNC=1 before `sh` (every
# op then waits for the device, so a fault names its op; slower, for the
# specs only: BENCH_PEERS=0 and BENCH_LIMIT keep it in budget).
#
# cuBLAS's peer is build/cublas_gemm: packed when nvcc was there, else built
# here when nvcc is found (on the PATH or as /usr/local/cuda/bin/nvcc):
#   nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 \
#        -o build/cublas_gemm bench/cublas_gemm.cu -lcublas \
#        -Xlinker -rpath,/usr/local/cuda/lib64

cd "$(dirname "$0")/.." || exit 1

MiB=1048576
LIMIT_MIB=64

# {======================================================================
# pack: what a GPU machine needs, into build/gpu-carry (see above)
# =======================================================================
if [ "$1" = pack ]; then
  out=build/gpu-carry
  packer=${EMBER_PACK_RUNTIME:-../shared/gpu/pack-runtime.sh}
  # a git worktree elsewhere: ../shared beside the main checkout
  if [ -z "$EMBER_PACK_RUNTIME" ] && [ ! -f "$packer" ]; then
    common=$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null)
    [ -n "$common" ] && packer="$(dirname "$(dirname "$common")")/shared/gpu/pack-runtime.sh"
  fi
  data=${EMBER_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
  [ -f "$packer" ] || { echo "bench: $packer not found (set EMBER_PACK_RUNTIME)" >&2; exit 1; }
  NVCC=$(command -v nvcc 2>/dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })
  [ -n "$NVCC" ] || { echo "bench: pack needs nvcc (the CUDA plugin and cuBLAS's peer)" >&2; exit 1; }
  # From clean: an old object may carry another OpenBLAS's link.
  echo "bench: make clean && make (the CUDA plugin too) ..." >&2
  make clean >/dev/null && make -j"${BENCH_JOBS:-2}" all >"${TMPDIR:-/tmp}/ember-pack-make.log" 2>&1 ||
    { tail -30 "${TMPDIR:-/tmp}/ember-pack-make.log" >&2; echo "bench: make failed" >&2; exit 1; }
  for f in ./ember build/ember/core.so build/libember_cuda.so; do
    [ -f "$f" ] || { echo "bench: $f is missing after make" >&2; exit 1; }
  done
  # OpenBLAS's OpenMP build, or fail loudly: the pthreads build would make
  # the CPU side of the parity specs several times slower (and fight the
  # OpenMP threads of Ember's own kernels).
  for f in ./ember build/ember/core.so; do
    blas=$(ldd "$f" | awk '/libopenblas/ {print $3}')
    case "$blas" in
      */openblas-openmp/*) echo "bench: $f links $blas (OpenMP)" >&2 ;;
      *) echo "bench: ERROR: $f links '${blas:-no OpenBLAS}', not OpenBLAS's OpenMP build" \
              "(install libopenblas0-openmp, or point the build at it)" >&2; exit 1 ;;
    esac
  done
  "$NVCC" -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -o build/cublas_gemm \
    bench/cublas_gemm.cu -lcublas -Xlinker -rpath,/usr/local/cuda/lib64 || exit 1
  rm -rf "$out" && mkdir -p "$out" || exit 1
  rt=$(mktemp -d) || exit 1
  # Not the plugin: it links only CUDA's and the C/C++ runtimes, which the
  # packer skips, and its grep finding nothing then fails under pipefail.
  bash "$packer" "$rt/.gpu-runtime" ./ember build/ember/core.so >&2 ||
    { echo "bench: $packer failed" >&2; exit 1; }
  tar -czf "$out/ember-gpu.tar.gz" -C "$rt" .gpu-runtime -C "$PWD" ember build/ember/core.so \
    build/libember_cuda.so build/cublas_gemm || exit 1
  rm -rf "$rt"
  if ls "$data"/train-images-idx3-ubyte* >/dev/null 2>&1; then
    mkdir -p "$out/fashion-mnist" && cp "$data"/*-idx?-ubyte* "$out/fashion-mnist/" || exit 1
  else
    echo "bench: no Fashion-MNIST files in $data: the GPU machine will use random data" >&2
  fi
  # What travels: the carry, and the tracked and untracked-not-ignored files.
  carry=$(du -sb "$out" | awk '{print $1}')
  tree=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | awk 'END {print $1}')
  total=$((carry + tree))
  echo "bench: carry $out $((carry / 1024)) KiB + tree $((tree / 1024)) KiB =" \
       "$((total / 1024)) KiB of the device tool's $LIMIT_MIB MiB" >&2
  if [ "$total" -gt $((LIMIT_MIB * MiB)) ]; then
    echo "bench: ERROR: over the $LIMIT_MIB MiB a device call carries" >&2
    exit 1
  fi
  echo "bench: then run(command=\"tar -xzf build/gpu-carry/ember-gpu.tar.gz && source .gpu-runtime/env.sh &&" \
       "nvidia-smi -L && sh bench/run_gpu.sh\", carry=[\"build/gpu-carry\"], timeout_s=420)" >&2
  exit 0
fi
# }======================================================================

# {======================================================================
# The run: phases with timestamps
# =======================================================================

PY=${BENCH_PYTHON:-python3}
DEVICE=${BENCH_DEVICE:-cuda}
SIZES=${BENCH_SIZES:-1024 2048 4096 8192}
DATA=${EMBER_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
if [ -z "$EMBER_FASHION_MNIST" ] && [ -d build/gpu-carry/fashion-mnist ] &&
   [ ! -d /usr/share/datasets/fashion-mnist ]; then
  DATA=build/gpu-carry/fashion-mnist
fi
export EMBER_FASHION_MNIST="$DATA"    # the training spec reads it too
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0
t0=$(date +%s)
times=""

# "[hh:mm:ss +Ns] what", on stderr as it happens.
say() { echo "[$(date +%H:%M:%S) +$(($(date +%s) - t0))s] $*" >&2; }

# phase NAME BUDGET CMD...: run CMD under timeout, note its seconds; the
# exit status of CMD (124 when it ran past BUDGET).
phase() {
  name=$1 budget=$2; shift 2
  say "$name: start (budget ${budget}s)"
  p0=$(date +%s)
  timeout -k 10 "$budget" "$@"
  rc=$?
  secs=$(($(date +%s) - p0))
  times="$times $name=${secs}s"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    say "$name: STOPPED after ${secs}s: past its budget of ${budget}s"
  else
    say "$name: done in ${secs}s (exit $rc)"
  fi
  return $rc
}

if [ "$DEVICE" = cpu ]; then
  # a check of the script: small sizes; the budgets are an H100's, so the
  # stand-in's specs (both sides on the CPU) get ten minutes
  SIZES=${BENCH_SIZES:-64 128}
  BENCH_LIMIT=${BENCH_LIMIT:-640}
  BENCH_SPECS_TIMEOUT=${BENCH_SPECS_TIMEOUT:-600}
fi
sizes_csv=$(echo $SIZES | tr ' ' ',')
say "Ember on $DEVICE; matmul sizes $SIZES; data $DATA"
[ -n "$BENCH_LIMIT" ] && say "SHORTENED: the epochs train on the first $BENCH_LIMIT images (BENCH_LIMIT), not 60000"
[ -n "$EMBER_TRAIN_STEPS" ] && say "SHORTENED: the training spec runs $EMBER_TRAIN_STEPS steps (EMBER_TRAIN_STEPS), not 200"
[ -n "$EMBER_CUDA_SYNC$CUDA_LAUNCH_BLOCKING" ] && say "EMBER_CUDA_SYNC/CUDA_LAUNCH_BLOCKING set: every op waits for the device (slow)"

# busted: the command, or the carried runtime's script (.gpu-runtime/env.sh
# defines `busted` as a bash function, which reaches neither this sh nor
# `timeout`).
if command -v busted >/dev/null 2>&1; then
  BUSTED="busted --lua=lua5.4"
elif [ -f .gpu-runtime/bin/busted.lua ]; then
  BUSTED="lua5.4 .gpu-runtime/bin/busted.lua"
else
  BUSTED=""
fi
[ -x ./ember ] || { say "./ember is missing: run make (or unpack the carry) first"; exit 1; }

# {====== specs
if [ "${BENCH_SPECS:-1}" != 0 ]; then
  if [ -n "$BUSTED" ]; then
    # shellcheck disable=SC2086
    phase specs "${BENCH_SPECS_TIMEOUT:-140}" env EMBER_REQUIRE_CUDA=1 OMP_WAIT_POLICY=passive \
      $BUSTED spec/cuda >"$tmp/specs" 2>&1
    rc=$?
  else
    echo "bench: busted not found (source .gpu-runtime/env.sh first)" >"$tmp/specs"
    rc=127
  fi
  cat "$tmp/specs"
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmp/specs" | tail -1)
  passed=$(echo "$summary" | awk '{print $1}')
  failed=$(echo "$summary" | awk '{print $3}')
  if [ $rc -ne 0 ] || [ -z "$summary" ] || [ "$failed" != 0 ] || [ "${passed:-0}" -eq 0 ]; then
    say "specs: FAILED (exit $rc; ${summary:-no summary line})"
    status=1
  else
    say "specs: $summary"
  fi
else
  say "specs: skipped (BENCH_SPECS=0)"
fi
# }======

# The same data for both sides: the IDX files when they are there.
if [ -f "$DATA/train-images-idx3-ubyte.gz" ] || [ -f "$DATA/train-images-idx3-ubyte" ]; then
  data_args="--data $DATA"
else
  data_args="--random"
fi
common="$data_args --sizes $sizes_csv --device $DEVICE"
[ -n "$BENCH_LIMIT" ] && common="$common --limit $BENCH_LIMIT"
PEERS=${BENCH_PEERS:-1}

# cuBLAS's peer: build it where nvcc is, else it must be there already.
cublas=build/cublas_gemm
if [ "$DEVICE" = cuda ] && [ "$PEERS" != 0 ]; then
  NVCC=$(command -v nvcc 2>/dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })
  if [ -n "$NVCC" ] && { [ ! -x "$cublas" ] || [ bench/cublas_gemm.cu -nt "$cublas" ]; }; then
    mkdir -p build
    say "building $cublas with $NVCC"
    "$NVCC" -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -o "$cublas" \
      bench/cublas_gemm.cu -lcublas -Xlinker -rpath,"$(dirname "$(dirname "$NVCC")")/lib64" >&2 ||
      { say "building $cublas failed"; status=1; }
  fi
  [ -x "$cublas" ] || { say "$cublas is missing and there is no nvcc to build it (see the header)"; status=1; }
fi

# shellcheck disable=SC2086
phase ember "${BENCH_EMBER_TIMEOUT:-100}" ./ember bench/cuda_bench.lua $common >"$tmp/ember" ||
  { say "ember: bench/cuda_bench.lua failed"; status=1; }
if [ "$PEERS" != 0 ]; then
  # shellcheck disable=SC2086
  phase torch "${BENCH_TORCH_TIMEOUT:-70}" env PYTHONUNBUFFERED=1 "$PY" bench/cuda_torch.py $common >"$tmp/torch" ||
    { say "torch: bench/cuda_torch.py failed (exit 3: no torch)"; status=1; }
  if [ "$DEVICE" = cuda ] && [ -x "$cublas" ]; then
    # shellcheck disable=SC2086
    phase cublas "${BENCH_CUBLAS_TIMEOUT:-25}" "$cublas" $SIZES >"$tmp/cublas" ||
      { say "cublas: $cublas failed"; status=1; }
  fi
else
  say "torch, cublas: skipped (BENCH_PEERS=0)"
fi
touch "$tmp/ember" "$tmp/torch" "$tmp/cublas"

# One awk program reads the three outputs (tagged by file name) and prints
# the table.  Lines starting with '#' carry versions, the device and the data.
awk -v sizes="$SIZES" -v py="$PY" -v device="$DEVICE" -v peers="$PEERS" -v cublas_run="$([ "$DEVICE" = cuda ] && echo 1)" '
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
  # need: whether the peer figure must be there ("" for none).  A missing
  # figure reads "MISSING" and counts; a skipped peer reads "skipped".
  function row(name, ev, pv, target, better, need,   ratio, verdict) {
    if (ev == "") { ev = "MISSING"; missing++ }
    if (pv == "" && need == "skipped") pv = "skipped"
    else if (pv == "" && need) { pv = "MISSING"; missing++ }
    else if (pv == "") pv = "-"
    ratio = "-"; verdict = ""
    if (ev != "MISSING" && pv != "-" && pv != "MISSING" && pv != "skipped" && pv + 0 > 0) {
      ratio = ev / pv
      if (better == "hi") verdict = sprintf(">= %.2f %s", target, ratio >= target ? "met" : "MISSED")
      if (better == "lo") verdict = sprintf("<= %.2f %s", target, ratio <= target ? "met" : "MISSED")
      if (better == "info") verdict = "(context)"
      ratio = sprintf("%.3f", ratio)
    }
    printf "%-30s | %10s | %10s | %7s | %s\n", name, ev, pv, ratio, verdict
  }
  END {
    tneed = peers != "0" ? 1 : "skipped"
    cneed = peers == "0" ? "skipped" : (cublas_run ? 1 : "")
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
      row(sprintf("epoch bs%-4d s (PyTorch)", bss[i]), e[k], t[k], 1.0, "lo", tneed)
    }
    for (i = 1; i <= nb; i++) {
      k = "epoch_bs" bss[i]
      row(sprintf("images/s bs%-4d (PyTorch)", bss[i]), e2[k], t2[k], 0, "info", tneed)
    }
    for (i = 1; i <= nb; i++) {
      k = "syncs_bs" bss[i]
      if (k in e) {
        printf "%-30s | %10s | %10s | %7s | %s\n", sprintf("syncs/step bs%-4d", bss[i]), e[k],
               "-", "-", (e[k] + 0 == 0 ? "== 0 met" : "== 0 MISSED")
        printf "%-30s | %10s | %10s | %7s | %s\n", sprintf("device mallocs/epoch bs%-4d", bss[i]),
               e2[k], "-", "-", "(context: a last, smaller batch may need new blocks)"
      }
    }
    for (i = 1; i <= nb; i++) {
      k = "fit_bs" bss[i]
      row(sprintf("model:fit epoch bs%-4d s", bss[i]), e[k], "", 0, "info", "")
    }
    n = split(sizes, ns, " ")
    for (i = 1; i <= n; i++) {
      k = "matmul_" ns[i]
      row(sprintf("matmul %-5d GFLOP/s (cuBLAS)", ns[i]), e[k], c[k], 0.95, "hi", cneed)
    }
    for (i = 1; i <= n; i++) {
      k = "matmul_" ns[i]
      row(sprintf("matmul %-5d GFLOP/s (torch)", ns[i]), e[k], t[k], 0, "info", tneed)
    }
    printf "\n  epoch: ratio = Ember seconds / PyTorch seconds (lower is better; target <= 1)\n"
    printf "  matmul: ratio = Ember GFLOP/s / cuBLAS GFLOP/s (higher is better; target >= 0.95)\n"
    printf "  model:fit adds the per-batch loss and accuracy its progress reads back (no peer)\n"
    if (missing) { printf "\nMISSING: %d figure%s of the table\n", missing, missing == 1 ? "" : "s"; exit 3 }
  }
' "$tmp/ember" "$tmp/torch" "$tmp/cublas" || status=1

say "phases:$times"
[ $status -eq 0 ] && say "all passed, every figure there" || say "FAILED (see above)"
exit $status
