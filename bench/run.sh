#!/bin/sh
# bench/run.sh -- Ember beside its peers, in one run, as one table (issue 6).
#
# Groups (BENCH_ONLY=a,b,... runs a subset; default all, in this order):
#   matmul   Ember's a:matmul(b), float32 [n,n] x [n,n], n = 256..2048
#            (bench/matmul.lua) vs cblas_sgemm called directly from C
#            (bench/matmul_c)
#   convgemm the same two on the GEMMs Ember's convolution issues for the
#            DESIGN.md network at batch 32 (CONV_GEMMS below)
#   op       a + b on two 4-element tensors, plain and recording for
#            autograd, a tiny forward + backward (bench/tiny_op.lua), and
#            one CNN training step at batch 32 (bench/cnn_step.lua), one
#            char-rnn LSTM training step (bench/lstm_bench.lua), vs
#            PyTorch's (bench/tiny_op_torch.py, bench/cnn_step_torch.py,
#            bench/lstm_torch.py)
#   startup  wall time and peak RSS of ./ember -e 'require "ember"' vs
#            python3 -c 'import torch' (bench/startup.sh)
#   cnn      a training epoch of the DESIGN.md network on the 54,000
#            Fashion-MNIST training images, Adam 1e-3, batch 32 and 128,
#            1 and 2 threads, and its peak RSS (bench/epoch.lua vs
#            bench/epoch_torch.py)
#   mlp      the same for the 784-128-64-10 ReLU MLP
#   dist     data-parallel training over MPI (issue 8), 1 thread per rank:
#            a 100 MB float32 all-reduce (sum) at 2 ranks through
#            ember.distributed (bench/allreduce.lua) vs MPI_Allreduce
#            called directly (bench/allreduce_c); the same for the CNN's
#            gradients (373 KB; Ember's all_reduce_coalesced with "mean",
#            as DDP averages, and average_gradients, the whole call DDP
#            makes); the CNN trained with nn.DistributedDataParallel and a
#            sharded loader, batch 32 per rank, at 1 and 2 ranks
#            (bench/dist_epoch.lua) vs PyTorch's DDP over gloo
#            (bench/dist_torch.py, which also gives gloo's all-reduce for
#            context), and the 2-rank scaling efficiency; skipped,
#            saying so, when mpirun is missing.
#   scan     cumsum, cumprod, cummax on long lines (1M and 10M float32,
#            [1000, 10000] along each dim, 10M float64) (bench/scan_bench.lua)
#            vs PyTorch's (bench/scan_torch.py), same thread count;
#            target: no case slower than 1.5x PyTorch
#   sort     sorting and selection (sort, argsort, topk) vs PyTorch, its own
#            table after the main one (bench/sort.sh; not in the default
#            list: BENCH_ONLY=sort or all)
#   ops      issue 17's figures in one table after the main one: scan,
#            sort and topk, multinomial, slicing assignment, each vs
#            PyTorch, naming every case over 1.5x (bench/ops.sh; not in the
#            default list: BENCH_ONLY=ops or all)
#   gpt      issue 18's table after the main one: the char GPT of
#            examples/char_gpt.lua (training step at 2 and 1 threads,
#            validation loss after BENCH_GPT_STEPS steps, default 2000, peak
#            RSS, sampling 500 tokens), causal attention, char-rnn's LSTM,
#            each vs PyTorch with its target, met or missed
#            (bench/transformer.sh; not in the default list: BENCH_ONLY=gpt
#            or all)
#   mmap     issue 19: opening a 1 GiB safetensors checkpoint with
#            ember.load(path, {mmap = true}) against reading it, time and
#            resident growth in fresh processes, vs torch.load(mmap=True)
#            where torch >= 2.1 (bench/mmap_bench.lua, bench/mmap_torch.py;
#            not in the default list: BENCH_ONLY=mmap or all;
#            BENCH_MMAP_MIB sets the size, default 1024)
#   checkpoint  issue 19's activation checkpointing: an 8-block GPT's step
#            with and without checkpointing every block, peak memory, step
#            time and the gradients' largest difference, each target met
#            or missed (bench/checkpoint_bench.lua; not in the default
#            list: BENCH_ONLY=checkpoint or all)
#   bf16     issue 19's bfloat16 matmul, 1024..4096, Ember bf16 (both
#            kernels) and float32 vs PyTorch's, and the bf16/f32 ratio
#            (target >= 1.8), its own table (bench/bf16.sh; not in the
#            default list: BENCH_ONLY=bf16 or all)
#   loader   issue 20's loader prefetch: CIFAR-sized tensor batches with
#            transforms and a 20 ms step, then an image folder (2000 PNGs
#            the bench writes, 64x64 -> 32x32, batch 64) with a small CNN
#            step, prefetch 0 and 2, vs torch's DataLoader over PIL
#            (bench/loader_bench.lua, bench/loader_torch.py; not in the
#            default list: BENCH_ONLY=loader or all)
#   (gemm = matmul,convgemm; all = every group)
# PyTorch is Debian's python3-torch from /usr/bin/python3 (BENCH_PYTHON
# overrides; without torch its column says so), always in its best
# configuration: OPENBLAS_NUM_THREADS=1 and torch.set_num_threads(n).
#
# Threads: the matmul, convgemm and op groups give both sides the same
# count: EMBER_NUM_THREADS, default the number of online cores, exported
# as OPENBLAS_NUM_THREADS and OMP_NUM_THREADS too (the tiny op's peer uses
# 1 thread, all a 4-element op can use).  The epochs run at each count of
# BENCH_EPOCH_THREADS (default "1 2"), the same on both sides; the MLP
# rows set each Ember figure beside PyTorch's better of its runs at those
# counts, as issue 6 asks.  The dist group runs one thread per rank on
# both sides (EMBER_NUM_THREADS, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS = 1,
# torch.set_num_threads(1)).
#
# Method.  Each program reports the median of its own timed batches
# (bench/timing.lua, bench/timing.py, bench/matmul_c.c).  The two sides
# then run BENCH_ROUNDS times (default 5), alternating (matmul one case at a
# time, so the two figures of a pair are taken within seconds of each
# other).  The table shows each side's median over the rounds, and as the
# ratio the median of the per-round (paired) ratios, so a neighbour that
# loads the cores for a while slows both halves of a pair alike rather
# than one column.  A row whose rounds disagree by more than 10% is marked
# noisy.  Epochs are expensive, so they have their own knobs:
#   BENCH_EPOCH_ROUNDS   rounds of the epoch cases (default 3)
#   BENCH_WARMUP_IMAGES  untimed warm-up before the timing (default 6400:
#                        200 steps at batch 32, 50 at 128)
#   BENCH_CNN_IMAGES     images timed for the CNN (default 12800: 400 steps
#                        at batch 32), 0 = one whole epoch
#   BENCH_MLP_IMAGES     the same for the MLP (default 0: the whole epoch)
# A run times its images in 8 consecutive slices; s/epoch is 54,000 images
# at the median slice's rate, and a run whose middle slices (the upper and
# lower quartile) differ by more than 10% marks its row noisy too.
# Start-up takes the median of BENCH_STARTUP_RUNS runs (default 7) of each
# side.  The dist group runs BENCH_ROUNDS rounds too, each one every case
# back to back (Ember, then its peers), under `mpirun --bind-to none`.  Its
# programs time fixed counts (every rank must make the same calls), each
# batch or slice between barriers and as long as its slowest rank: the
# all-reduces 9 batches, the median batch (bench/allreduce_c.c says how);
# the training runs BENCH_DIST_WARMUP untimed steps (default 50), then
# BENCH_DIST_STEPS (default 300) in 4 slices, the median slice giving
# images/s over all ranks.
#
# Ember runs through ./ember when it has been built, else through the stock
# lua5.4 with the library from lua/ and the C module from build/ (the
# startup and dist groups need ./ember).  Called by `make bench` from the
# repository root; works on its own too.

cd "$(dirname "$0")/.." || exit 1

threads=${EMBER_NUM_THREADS:-$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}
rounds=${BENCH_ROUNDS:-5}
erounds=${BENCH_EPOCH_ROUNDS:-3}
ethreads=${BENCH_EPOCH_THREADS:-1 2}
warm_images=${BENCH_WARMUP_IMAGES:-6400}
cnn_images=${BENCH_CNN_IMAGES:-12800}
mlp_images=${BENCH_MLP_IMAGES:-0}
st_runs=${BENCH_STARTUP_RUNS:-7}
dist_warm=${BENCH_DIST_WARMUP:-50}
dist_steps=${BENCH_DIST_STEPS:-300}
only=${BENCH_ONLY:-matmul,convgemm,op,scan,startup,cnn,mlp,dist}
EMBER_NUM_THREADS=$threads
OPENBLAS_NUM_THREADS=$threads
OMP_NUM_THREADS=$threads
export EMBER_NUM_THREADS OPENBLAS_NUM_THREADS OMP_NUM_THREADS
PY=${BENCH_PYTHON:-/usr/bin/python3}   # the Debian python3-torch lives here

# The GEMMs of core/cpu/conv_gemm.c (im2col + GEMM) for the DESIGN.md network at
# batch 32 with 2 threads, as M x N x K and whether A, B are stored
# transposed.  With K = C*KH*KW and P = OH*OW, the threads split the batch
# in units of B images whose col [K, B*P] stays within 1 MiB (balanced
# across the threads), and each unit makes one GEMM per layer and pass:
#   forward   Y [O, BP]     = W [O,K] x col [K, BP]            (NN)
#   weights   gW^T [K, O]  += col [K, BP] x gY^T [BP, O]        (NN)
#   input     gcol [K, BP]  = W^T x gY [O, BP]                 (TN)
# conv2 32->64 on 13x13 (K 288, P 121, units of 6 images), conv3 64->64 on
# 5x5 (K 576, P 9, units of 16).  conv1 (1->32, K 9) takes the direct path
# (no GEMM), and its input needs no gradient.  conv_gemm.c calls Ember's own
# AVX-512 kernels (matmul.c) for these; the rows time them through
# a:matmul(b), which takes those kernels for K <= 256 and OpenBLAS above.
CONV_GEMMS="conv2.fwd=64x726x288:NN conv2.gW=288x64x726:NN conv2.gx=288x726x64:TN
conv3.fwd=64x144x576:NN conv3.gW=576x64x144:NN conv3.gx=576x144x64:TN"

for n in rounds erounds warm_images cnn_images mlp_images st_runs dist_warm dist_steps; do
  eval "v=\$$n"
  case $v in ''|*[!0-9]*) echo "bench: $n must be a non-negative integer, got '$v'" >&2; exit 1 ;; esac
done
[ "$rounds" -ge 1 ] && [ "$erounds" -ge 1 ] && [ "$st_runs" -ge 1 ] && [ "$dist_steps" -ge 1 ] ||
  { echo "bench: BENCH_ROUNDS, BENCH_EPOCH_ROUNDS, BENCH_STARTUP_RUNS and BENCH_DIST_STEPS must be >= 1" >&2; exit 1; }
for t in $ethreads; do
  case $t in ''|*[!0-9]*|0) echo "bench: BENCH_EPOCH_THREADS must list positive integers, got '$ethreads'" >&2; exit 1 ;; esac
done
# the groups asked for: want_<group>=1
for g in $(echo "$only" | tr ',' ' '); do
  case $g in
    matmul|convgemm|op|scan|startup|cnn|mlp|dist|sort|ops|gpt|mmap|checkpoint|bf16|loader) eval "want_$g=1" ;;
    gemm) want_matmul=1; want_convgemm=1 ;;
    all) want_matmul=1; want_convgemm=1; want_op=1; want_scan=1; want_startup=1; want_cnn=1; want_mlp=1; want_dist=1; want_sort=1; want_ops=1; want_gpt=1; want_mmap=1; want_checkpoint=1; want_bf16=1; want_loader=1 ;;
    *) echo "bench: BENCH_ONLY: unknown group '$g' (expected matmul, convgemm, gemm, op, scan, startup, cnn, mlp, dist, sort, ops, gpt, mmap, checkpoint, bf16, loader or all)" >&2; exit 1 ;;
  esac
done
wants() { eval "[ -n \"\${want_$1:-}\" ]"; }

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0
started=$(date +%s)

if [ -x ./ember ]; then
  runner="./ember"
else
  runner="lua5.4 (lua/ + build/ember/core.so; ./ember not built)"
  [ -f build/ember/core.so ] || make --no-print-directory build/ember/core.so >&2 || exit 1
fi
if wants matmul || wants convgemm; then
  [ -x bench/matmul_c ] || make --no-print-directory -C bench >&2 || exit 1
fi

run_lua() {
  if [ -x ./ember ]; then
    ./ember "$@"
  else
    lua5.4 -e 'package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
               package.cpath = "build/?.so;" .. package.cpath' "$@"
  fi
}

# Can the PyTorch peers run at all?  (exit 3: torch is not importable)
torch=yes
if [ ! -x "$PY" ] || ! "$PY" -c 'import torch' >/dev/null 2>&1; then torch=no; fi

# One epoch run: side (ember|torch), kind, batch, threads; appends its
# figures to $tmp/ep_<side>, each line prefixed "<kind>_<batch>_<threads>".
epoch_run() {
  side=$1 kind=$2 bs=$3 t=$4
  warm=$(( (warm_images + bs - 1) / bs ))
  eval "imgs=\$${kind}_images"
  steps=$(( (imgs + bs - 1) / bs ))
  if [ "$side" = ember ]; then
    EMBER_NUM_THREADS=$t OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t \
      run_lua bench/epoch.lua "$kind" "$bs" "$t" "$warm" "$steps" >"$tmp/one" ||
      { echo "bench: bench/epoch.lua $kind $bs $t failed" >&2; status=1; }
  else
    OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=1 \
      "$PY" bench/epoch_torch.py "$kind" "$bs" "$t" "$warm" "$steps" >"$tmp/one" ||
      { echo "bench: bench/epoch_torch.py $kind $bs $t failed" >&2; status=1; }
  fi
  sed -n "/^#/s/^#/# ${kind}_${bs}_$t/p; /^#/!s/^/${kind}_${bs}_$t /p" "$tmp/one" >>"$tmp/ep_$side"
  rm -f "$tmp/one"
}

echo "bench: groups $only; $rounds rounds ($erounds for epochs), $threads threads each side" \
     "(epochs at $ethreads); Ember via $runner" >&2
r=1
while [ "$r" -le "$rounds" ]; do
  printf 'bench: round %d/%d ...\n' "$r" "$rounds" >&2
  if wants matmul; then
    for n in 256 512 1024 2048; do
      bench/matmul_c "$n"           >>"$tmp/mm_peer"  || { echo "bench: bench/matmul_c $n failed" >&2; status=1; }
      run_lua bench/matmul.lua "$n" >>"$tmp/mm_ember" || { echo "bench: bench/matmul.lua $n failed" >&2; status=1; }
    done
  fi
  if wants convgemm; then
    for c in $CONV_GEMMS; do
      shape=${c#*=}
      bench/matmul_c "$shape"           >>"$tmp/mm_peer"  || { echo "bench: bench/matmul_c $shape failed" >&2; status=1; }
      run_lua bench/matmul.lua "$shape" >>"$tmp/mm_ember" || { echo "bench: bench/matmul.lua $shape failed" >&2; status=1; }
    done
  fi
  if wants op; then
    run_lua bench/tiny_op.lua     >>"$tmp/op_ember" || { echo "bench: bench/tiny_op.lua failed" >&2; status=1; }
    run_lua bench/cnn_step.lua    >>"$tmp/op_ember" || { echo "bench: bench/cnn_step.lua failed" >&2; status=1; }
    run_lua bench/lstm_bench.lua  >>"$tmp/op_ember" || { echo "bench: bench/lstm_bench.lua failed" >&2; status=1; }
    if [ "$torch" = yes ]; then
      "$PY" bench/tiny_op_torch.py >>"$tmp/op_peer" || { echo "bench: bench/tiny_op_torch.py failed" >&2; status=1; }
      # PyTorch's best configuration: its own pool, OpenBLAS single-threaded
      OPENBLAS_NUM_THREADS=1 "$PY" bench/cnn_step_torch.py >>"$tmp/op_peer" || { echo "bench: bench/cnn_step_torch.py failed" >&2; status=1; }
      OPENBLAS_NUM_THREADS=1 "$PY" bench/lstm_torch.py >>"$tmp/op_peer" || { echo "bench: bench/lstm_torch.py failed" >&2; status=1; }
    fi
  fi
  if wants scan; then
    run_lua bench/scan_bench.lua cpu >>"$tmp/scan_ember" || { echo "bench: bench/scan_bench.lua failed" >&2; status=1; }
    if [ "$torch" = yes ]; then
      OPENBLAS_NUM_THREADS=1 "$PY" bench/scan_torch.py cpu >>"$tmp/scan_peer" || { echo "bench: bench/scan_torch.py failed" >&2; status=1; }
    fi
  fi
  r=$((r + 1))
done

if wants startup; then
  printf 'bench: start-up, %d runs ...\n' "$st_runs" >&2
  if [ -x ./ember ]; then
    BENCH_PYTHON=$PY sh bench/startup.sh "$st_runs" >"$tmp/startup" || { echo "bench: bench/startup.sh failed" >&2; status=1; }
  else
    echo "bench: start-up needs ./ember (run make)" >&2; status=1
  fi
fi

if wants cnn || wants mlp; then
  r=1
  while [ "$r" -le "$erounds" ]; do
    for kind in cnn mlp; do
      wants "$kind" || continue
      for bs in 32 128; do
        for t in $ethreads; do
          printf 'bench: epochs, round %d/%d: %s batch %d, %d thread(s) ...\n' "$r" "$erounds" "$kind" "$bs" "$t" >&2
          epoch_run ember "$kind" "$bs" "$t"
          [ "$torch" = yes ] && epoch_run torch "$kind" "$bs" "$t"
        done
      done
    done
    r=$((r + 1))
  done
fi

# The dist group.  One run: side (ember|mpi|torch), case tag, ranks, then
# the command; its "key value" lines go to $tmp/dist_<side> as
# "<tag>_<ranks> key value" (comment lines likewise, after the '#').
dist_run() {
  side=$1 tag=$2 np=$3
  shift 3
  store_n=$((store_n + 1))
  EMBER_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
    BENCH_TORCH_STORE="$tmp/gloo_store.$store_n" \
    $MPIRUN -np "$np" "$@" >"$tmp/one" 2>"$tmp/one_err" ||
    { echo "bench: mpirun -np $np $* failed:" >&2; tail -n 5 "$tmp/one_err" >&2; status=1; }
  sed -n "/^#/s/^#/# ${tag}_$np/p; /^#/!s/^/${tag}_$np /p" "$tmp/one" >>"$tmp/dist_$side"
  rm -f "$tmp/one" "$tmp/one_err"
}

dist_note=""
if wants dist; then
  if ! command -v mpirun >/dev/null 2>&1; then
    dist_note="skipped: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)"
  elif [ ! -x ./ember ]; then
    dist_note="skipped: the dist group needs ./ember (run make)"
  fi
  if [ -n "$dist_note" ]; then
    echo "bench: dist group $dist_note" >&2
  else
    make --no-print-directory -s -C bench allreduce_c >&2 ||
      echo "bench: could not build bench/allreduce_c (mpicc missing?); no MPI peer" >&2
    # --bind-to none: Open MPI would pin each rank to a core, and pinned
    # ranks cannot move away from a neighbour's work on this shared machine
    MPIRUN="mpirun --bind-to none --oversubscribe"
    [ "$(id -u)" = 0 ] && MPIRUN="$MPIRUN --allow-run-as-root"
    GRAD_FLOATS=93322   # the CNN's parameters: 320 + 18496 + 36928 + 36928 + 650
    store_n=0
    r=1
    while [ "$r" -le "$rounds" ]; do
      printf 'bench: dist, round %d/%d ...\n' "$r" "$rounds" >&2
      dist_run ember ar100 2 ./ember bench/allreduce.lua
      [ -x bench/allreduce_c ] && dist_run mpi ar100 2 bench/allreduce_c
      [ "$torch" = yes ] && dist_run torch ar100 2 "$PY" bench/dist_torch.py allreduce
      dist_run ember grads 2 ./ember bench/allreduce.lua grads 100 9 50
      [ -x bench/allreduce_c ] && dist_run mpi grads 2 bench/allreduce_c "$GRAD_FLOATS" 100 9 50
      [ "$torch" = yes ] && dist_run torch grads 2 "$PY" bench/dist_torch.py allreduce "$GRAD_FLOATS" 100 9 50
      for np in 1 2; do
        dist_run ember cnn "$np" ./ember bench/dist_epoch.lua 32 "$dist_warm" "$dist_steps"
        [ "$torch" = yes ] && dist_run torch cnn "$np" "$PY" bench/dist_torch.py cnn 32 "$dist_warm" "$dist_steps"
      done
      r=$((r + 1))
    done
  fi
fi
touch "$tmp/mm_peer" "$tmp/mm_ember" "$tmp/op_ember" "$tmp/op_peer" "$tmp/scan_ember" "$tmp/scan_peer" "$tmp/startup" \
      "$tmp/ep_ember" "$tmp/ep_torch" "$tmp/dist_ember" "$tmp/dist_mpi" "$tmp/dist_torch"
elapsed=$(( $(date +%s) - started ))

# One awk program reads the outputs (tagged by file) and prints the table.
# Lines starting with '#' carry versions, thread counts and what was timed.
awk -v torch="$torch" -v threads="$threads" -v rounds="$rounds" -v erounds="$erounds" \
    -v ethreads="$ethreads" -v runner="$runner" -v py="$PY" -v only="$only" \
    -v conv_gemms="$(echo $CONV_GEMMS)" -v coretype="${OPENBLAS_CORETYPE:-unset (OpenBLAS picks)}" -v warm_images="$warm_images" -v cnn_images="$cnn_images" \
    -v mlp_images="$mlp_images" -v st_runs="$st_runs" -v elapsed="$elapsed" \
    -v dist_note="$dist_note" -v dist_warm="$dist_warm" -v dist_steps="$dist_steps" '
  function median(key,   n, i, j, t, v) {
    n = cnt[key]; if (n == 0) return ""
    for (i = 1; i <= n; i++) v[i] = val[key, i]
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > t + 0; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return v[int((n + 1) / 2)]
  }
  function add(key, x) { val[key, ++cnt[key]] = x }
  FILENAME ~ /mm_peer$/  && /^# openblas/ { blas = $3 " " $4; peer_thr = $NF; next }
  FILENAME ~ /mm_ember$/ && /^# threads/  { ember_thr = $3; next }
  FILENAME ~ /op_peer$/  && /^# torch/    { torchv = $3; next }
  FILENAME ~ /scan_peer$/ && /^# torch/   { torchv = $3; next }
  FILENAME ~ /ep_torch$/ && $3 == "torch" && NF == 4 { torchv = $4; next }
  FILENAME ~ /dist_mpi$/ && /^# ar100_2 mpi / && $4 != "ranks" { mpiv = substr($0, length("# ar100_2 mpi ") + 1); next }
  FILENAME ~ /dist_torch$/ && $3 == "torch" && $NF == "gloo" { torchv = $4; sub(/,$/, "", torchv); next }
  /^#/ { next }
  FILENAME ~ /dist_(ember|mpi|torch)$/ { side = FILENAME; sub(/.*dist_/, "", side); add("d_" side "_" $1 "_" $2, $3); next }
  FILENAME ~ /mm_peer$/  { add("mmp" $1, $2); has_gemm = 1; next }
  FILENAME ~ /mm_ember$/ { add("mme" $1, $2); has_gemm = 1; next }
  FILENAME ~ /op_ember$/ { add("ope" $1, $2); next }
  FILENAME ~ /op_peer$/  { add("opp" $1, $2); next }
  FILENAME ~ /scan_ember$/ { add("sce" $1, $2); has_scan = 1; next }
  FILENAME ~ /scan_peer$/  { add("scp" $1, $2); next }
  FILENAME ~ /startup$/  { add("st" $1, $2); next }
  FILENAME ~ /ep_ember$/ { add("epe" $2 $1, $3); next }
  FILENAME ~ /ep_torch$/ { add("epp" $2 $1, $3); next }
  # max/min over the rounds of one side, as a spread: 1.10 = 10% apart
  function spread(key,   i, lo, hi) {
    lo = hi = val[key, 1] + 0
    for (i = 2; i <= cnt[key]; i++) {
      if (val[key, i] + 0 < lo) lo = val[key, i] + 0
      if (val[key, i] + 0 > hi) hi = val[key, i] + 0
    }
    return lo > 0 ? hi / lo : 1
  }
  function maxof(key,   i, hi) {
    hi = 0
    for (i = 1; i <= cnt[key]; i++) if (val[key, i] + 0 > hi) hi = val[key, i] + 0
    return hi
  }
  function fmt(x) {
    if (x == "") return (torch == "yes" ? "failed" : "-")
    return x
  }
  function num(x, f) { return x == "" ? fmt(x) : sprintf(f, x) }
  # The ratio of a row: the median of the paired per-round ratios of keys
  # ke and kp when both have every round, else the ratio of the medians.
  function ratio_of(ke, kp,   i, e, p) {
    e = median(ke); p = median(kp)
    if (e == "" || p == "" || p + 0 <= 0) return ""
    if (cnt[ke] != cnt[kp]) return e / p
    delete cnt["pair"]
    for (i = 1; i <= cnt[ke]; i++) add("pair", val[ke, i] / val[kp, i])
    return median("pair")
  }
  # The target column: better is "hi" (ratio >= target), "lo" (ratio <=
  # target) or "info" (no target); extra notes a noise mark.
  function verdict(ratio, target, better, noisy_row,   v) {
    if (ratio == "" || better == "info") v = (better == "info" ? "(no target)" : "")
    else if (better == "hi") v = sprintf(">= %.3f %s", target, ratio >= target ? "met" : "MISSED")
    else v = sprintf("<= %.3f %s", target, ratio <= target ? "met" : "MISSED")
    if (noisy_row != "") { v = v "  (noisy: " noisy_row ")"; noisy = 1 }
    return v
  }
  function rounds_noise(ke, kp) {
    return (spread(ke) > 1.10 || spread(kp) > 1.10) ? "rounds >10% apart" : ""
  }
  # One line of the table: Ember key, peer key, target, "hi"/"lo"/"info".
  function row(name, ke, kp, target, better,   ratio, rs) {
    ratio = ratio_of(ke, kp)
    rs = ratio == "" ? "-" : sprintf("%.3f", ratio)
    printf "%-32s %10s %10s %7s   %s\n", name, fmt(median(ke)), fmt(median(kp)), rs,
           verdict(ratio, target, better, (ratio != "" && better != "info") ? rounds_noise(ke, kp) : "")
  }
  # The epoch rows.  For the MLP the peer of each round is the better
  # (faster) PyTorch run of that round over the thread counts.
  function best_peer(kind, bs, what,   i, r, k, x, b, n) {
    n = split(ethreads, ts, " ")
    delete cnt["best"]
    for (r = 1; r <= erounds; r++) {
      b = ""
      for (i = 1; i <= n; i++) {
        k = "epp" what kind "_" bs "_" ts[i]
        if (r > cnt[k]) continue
        x = val[k, r] + 0
        if (b == "" || (what == "epoch" ? x < b : x > b)) b = x
      }
      if (b != "") add("best", b)
    }
    for (r = 1; r <= cnt["best"]; r++) val["best" what kind bs, r] = val["best", r]
    cnt["best" what kind bs] = cnt["best"]
    return "best" what kind bs
  }
  function epoch_row(kind, bs, t, target, better, best,   id, ke, kp, ie, ip, ratio, rs, nz) {
    id = kind "_" bs "_" t
    ke = "epeepoch" id; ie = "epeimages_s" id
    if (best) { kp = best_peer(kind, bs, "epoch"); ip = best_peer(kind, bs, "images_s") }
    else { kp = "eppepoch" id; ip = "eppimages_s" id }
    ratio = ratio_of(ke, kp)
    rs = ratio == "" ? "-" : sprintf("%.3f", ratio)
    nz = ""
    if (ratio != "") {
      nz = rounds_noise(ke, kp)
      if (maxof("epespread" id) > 1.10 || maxof("eppspread" id) > 1.10)
        nz = (nz == "" ? "" : nz ", ") "slices >10% apart"
    }
    printf "%-32s %9s %9s %9s %9s %7s   %s\n", sprintf("%s batch %d, %d thread%s", toupper(kind), bs, t, t == 1 ? "" : "s"),
           num(median(ke), "%.2f"), num(median(kp), "%.2f"), num(median(ie), "%.0f"), num(median(ip), "%.0f"), rs,
           verdict(ratio, target, better, nz)
  }
  function epoch_header(what) {
    printf "\n%-32s %9s %9s %9s %9s %7s   %s\n", what, "Ember", "PyTorch", "Ember", "PyTorch", "ratio", "target"
    printf "%-32s %9s %9s %9s %9s %7s   %s\n", "", "s/epoch", "s/epoch", "images/s", "images/s", "", ""
  }
  function header(what, e, p) {
    printf "\n%-32s %10s %10s %7s   %s\n", what, e, p, "ratio", "target"
  }
  # A dist row: no targets, but the noise mark of the others.
  function drow(name, ke, kp,   ratio, rs) {
    ratio = ratio_of(ke, kp)
    rs = ratio == "" ? "-" : sprintf("%.3f", ratio)
    printf "%-32s %10s %10s %7s   %s\n", name, fmt(median(ke)), fmt(median(kp)), rs,
           verdict(ratio, 0, "info", ratio != "" ? rounds_noise(ke, kp) : "")
  }
  # The 2-rank scaling efficiency of a side, images/s at 2 ranks / (2 x
  # at 1 rank), per round; the median over the rounds.
  function efficiency(side,   k1, k2, k, i, n) {
    k1 = "d_" side "_cnn_1_images_s"; k2 = "d_" side "_cnn_2_images_s"; k = "eff_" side
    n = cnt[k1] < cnt[k2] ? cnt[k1] : cnt[k2]
    cnt[k] = 0
    for (i = 1; i <= n; i++) if (val[k1, i] + 0 > 0) add(k, sprintf("%.3f", val[k2, i] / (2 * val[k1, i])))
    return median(k)
  }
  function slice_text(images) {
    return images + 0 == 0 ? "one whole epoch timed" : sprintf("%d images timed (scaled to 54,000)", images)
  }
  END {
    nt = split(ethreads, ts, " ")
    printf "\nEmber benchmarks (issue 6): groups %s; %s; took %d s\n", only, runner, elapsed
    printf "peers: %s via cblas_sgemm from C; ", (blas == "" ? "OpenBLAS" : blas)
    printf "%s\n", (torch == "yes" ? "PyTorch " (torchv == "" ? "?" : torchv) " (" py "; OPENBLAS_NUM_THREADS=1, torch.set_num_threads as each case says)" : "PyTorch not installed (apt-get install python3-torch)")
    printf "figures: medians over the rounds; ratio: the median of the per-round Ember/peer ratios\n"
    if (ember_thr != "" && peer_thr != "" && ember_thr != peer_thr)
      printf "WARNING: thread counts differ (Ember %s, OpenBLAS %s)\n", ember_thr, peer_thr

    if (("epeepochcnn_32_" ts[1]) in cnt || ("epeepochmlp_32_" ts[1]) in cnt) {
      printf "\nTraining epochs: 54,000 Fashion-MNIST images, Adam 1e-3, %d round(s); after a warm-up of %d images,\n", erounds, warm_images
      if (("epeepochcnn_32_" ts[1]) in cnt) printf "CNN: %s; ", slice_text(cnn_images)
      if (("epeepochmlp_32_" ts[1]) in cnt) printf "MLP: %s; ", slice_text(mlp_images)
      printf "s/epoch = 54,000 images at the median of 8 timed slices\n"
      printf "(ratio = Ember s/epoch / PyTorch s/epoch: lower is better)\n"
      if (("epeepochcnn_32_" ts[1]) in cnt) {
        epoch_header("CNN (DESIGN.md network)")
        for (i = 1; i <= nt; i++) epoch_row("cnn", 32, ts[i], 0.6, "lo", 0)
        for (i = 1; i <= nt; i++) epoch_row("cnn", 128, ts[i], 0.7, "lo", 0)
      }
      if (("epeepochmlp_32_" ts[1]) in cnt) {
        epoch_header("MLP 784-128-64-10")
        for (i = 1; i <= nt; i++) epoch_row("mlp", 32, ts[i], 0.35, "lo", 1)
        for (i = 1; i <= nt; i++) epoch_row("mlp", 128, ts[i], 0, "info", 1)
        printf "  (MLP: the PyTorch columns are, each round, its faster run of those at"
        for (i = 1; i <= nt; i++) printf "%s %d", i == 1 ? "" : (i == nt ? " and" : ","), ts[i]
        printf " threads;\n   PyTorch MLP s/epoch by batch/threads:"
        for (b = 32; b <= 128; b += 96)
          for (i = 1; i <= nt; i++)
            printf " %d/%d %s%s", b, ts[i], num(median("eppepochmlp_" b "_" ts[i]), "%.2f"), (b == 128 && i == nt) ? ")\n" : ","
      }
      header("Peak RSS of the training runs, MiB", "Ember", "PyTorch")
      for (k = 1; k <= 2; k++) {
        kind = k == 1 ? "cnn" : "mlp"
        if (!(("epeepoch" kind "_32_" ts[1]) in cnt)) continue
        for (b = 32; b <= 128; b += 96)
          for (i = 1; i <= nt; i++)
            row(sprintf("%s batch %d, %d thread%s", toupper(kind), b, ts[i], ts[i] == 1 ? "" : "s"),
                "eperss_mib" kind "_" b "_" ts[i], "epprss_mib" kind "_" b "_" ts[i],
                0.25, kind == "cnn" && b == 32 ? "lo" : "info")
      }
      printf "  (VmHWM of the whole process at the end of the run: data, model, buffers, runtime;\n"
      printf "   issue 6 sets its targets at batch 32, so the batch-128 rows are context)\n"
    }

    if ("stember_wall" in cnt) {
      header(sprintf("Start-up, median of %d runs", st_runs), "Ember", "PyTorch")
      row("wall ms (require / import)", "stember_wall", "sttorch_wall", 0.05, "lo")
      row("RSS MiB", "stember_rss", "sttorch_rss", 0, "info")
      printf "%-32s %10s %10s\n", "/bin/true, same way: ms, MiB", median("sttrue_wall"), median("sttrue_rss")
      printf "  (./ember -e '\''require \"ember\"'\'' vs %s -c '\''import torch'\'', warm page cache;\n", py
      printf "   the /bin/true line is what spawning a process and reading the clock costs)\n"
    }

    if ("opeadd" in cnt) {
      header("Per-op overhead", "Ember", "PyTorch")
      if (torch == "yes") {
        row("a + b, 4 elts  us/call", "opeadd", "oppadd", 0.25, "lo")
        row("a + b, grad    us/call", "opeadd_grad", "oppadd_grad", 0.25, "lo")
        row("fwd+bwd        us/call", "opefwd_bwd", "oppfwd_bwd", 0.2, "lo")
        row("empty loop     us/iter", "opeloop", "opploop", 0, "info")
        row("CNN step bs32  ms", "opecnn_step", "oppcnn_step", 0, "info")
        row("LSTM step (char-rnn) ms", "opelstm_step", "opplstm_step", 0.8, "lo")
        printf "  (ratio = Ember time / PyTorch time: lower is better; PyTorch 1 thread for the tiny ops,\n"
        printf "   %d for the CNN and LSTM steps; targets: issue 6 (tiny add 0.25, tiny fwd+bwd 0.2; a + b with\n", threads
        printf "   grad is held to the tiny add target; LSTM step: issue 18, 0.8); the empty loop (Lua vs Python) is context, inside the a + b figures)\n"
      } else {
        printf "%-32s %10s   %s\n", "a + b, 4 elts  us/call", fmt(median("opeadd")), "PyTorch: not installed (apt-get install python3-torch)"
        printf "%-32s %10s\n", "empty loop     us/iter", median("opeloop")
      }
    }

    if (has_scan) {
      header(sprintf("Scans on long lines, %d threads, ms", threads), "Ember", "PyTorch")
      nsc = split("cumsum_1M cumsum_10M cumsum_1000x10000_dim2 cumsum_1000x10000_dim1 cumprod_10M cummax_10M cumsum_f64_10M", sc, " ")
      for (i = 1; i <= nsc; i++) row(sc[i], "sce" sc[i], "scp" sc[i], 1.5, "lo")
      printf "  (ratio = Ember ms / PyTorch ms: lower is better; float32 unless f64; each call allocates its result)\n"
    }

    if (has_gemm) {
      header(sprintf("GEMM float32, %d threads, GFLOP/s", threads), "Ember", "OpenBLAS")
      if ("mme256" in cnt) {
        split("256 512 1024 2048", ns, " ")
        for (i = 1; i <= 4; i++)
          row(sprintf("matmul %4d", ns[i]), "mme" ns[i], "mmp" ns[i], 0.95, "hi")
      }
      nc = split(conv_gemms, cs, " ")
      for (i = 1; i <= nc; i++) {
        split(cs[i], kv, "=")
        if (!(("mme" kv[2]) in cnt)) continue
        row(sprintf("%-9s %s", kv[1], kv[2]), "mme" kv[2], "mmp" kv[2], 0.95, "hi")
      }
      printf "  (ratio = Ember GFLOP/s / OpenBLAS GFLOP/s: higher is better; conv rows: M x N x K and\n"
      printf "   whether A, B are transposed, the GEMMs core/cpu/conv_gemm.c issues for the CNN at batch 32,\n"
      printf "   2 threads; a:matmul(b) takes Ember AVX-512 kernels for K <= 256, OpenBLAS above;\n"
      printf "   OpenBLAS as the environment sets it up: OPENBLAS_CORETYPE=%s)\n", coretype
    }
    if (dist_note != "") printf "\nDistributed training (issue 8): %s\n", dist_note
    else if (("d_ember_ar100_2_allreduce_ms" in cnt) || ("d_ember_cnn_1_images_s" in cnt)) {
      printf "\nDistributed training (issue 8): %s; mpirun --bind-to none, 1 thread per rank, %d round(s)\n",
             (mpiv == "" ? "MPI" : mpiv), rounds
      header("All-reduce, 2 ranks, float32", "Ember", "MPI direct")
      drow("100 MB sum, ms per call", "d_ember_ar100_2_allreduce_ms", "d_mpi_ar100_2_allreduce_ms")
      drow("100 MB sum, bus GB/s", "d_ember_ar100_2_busbw_gbs", "d_mpi_ar100_2_busbw_gbs")
      drow("CNN grads 373 KB, ms per call", "d_ember_grads_2_allreduce_ms", "d_mpi_grads_2_allreduce_ms")
      printf "%-32s %10s\n", "  average_gradients, ms", fmt(median("d_ember_grads_2_avg_grads_ms"))
      header("All-reduce, 2 ranks, float32", "Ember", "gloo")
      drow("100 MB sum, ms per call", "d_ember_ar100_2_allreduce_ms", "d_torch_ar100_2_allreduce_ms")
      drow("100 MB sum, bus GB/s", "d_ember_ar100_2_busbw_gbs", "d_torch_ar100_2_busbw_gbs")
      drow("CNN grads 373 KB, ms per call", "d_ember_grads_2_allreduce_ms", "d_torch_grads_2_allreduce_ms")
      printf "  (ratio = Ember / peer; time lower is better, bandwidth higher; each call in place;\n"
      printf "   bus GB/s = bytes x 2(W-1)/W / time, the NCCL-tests convention, 10^9 bytes;\n"
      printf "   the grads rows: Ember all_reduce_coalesced(grads, \"mean\") on the CNN'\''s 10 gradient\n"
      printf "   tensors (93,322 floats), the peers one flat buffer of as many floats, summed;\n"
      printf "   average_gradients is the whole call DDP'\''s backward makes; gloo is PyTorch'\''s, context)\n"
      header("CNN, DDP, batch 32 per rank", "Ember", "PyTorch")
      drow("images/s, 1 rank", "d_ember_cnn_1_images_s", "d_torch_cnn_1_images_s")
      drow("images/s, 2 ranks", "d_ember_cnn_2_images_s", "d_torch_cnn_2_images_s")
      drow("ms per step, 1 rank", "d_ember_cnn_1_step_ms", "d_torch_cnn_1_step_ms")
      drow("ms per step, 2 ranks", "d_ember_cnn_2_step_ms", "d_torch_cnn_2_step_ms")
      printf "%-32s %10s\n", "  gradient sync per step, ms", fmt(median("d_ember_cnn_2_sync_ms"))
      printf "%-32s %10s %10s\n", "scaling efficiency, 2 ranks", fmt(efficiency("ember")), fmt(efficiency("torch"))
      printf "  (images/s over all ranks, Adam 1e-3, Fashion-MNIST, %d warm-up steps, %d timed in\n", dist_warm, dist_steps
      printf "   4 slices between barriers, the median slice; images/s ratio = Ember / PyTorch, higher\n"
      printf "   is better; PyTorch: DDP over gloo, DistributedSampler; gradient sync: Ember'\''s time in\n"
      printf "   average_gradients (all-reduce and waiting for the other rank), mean over the ranks;\n"
      printf "   scaling efficiency = images/s at 2 ranks / (2 x at 1 rank), per round, the median)\n"
    }
    if (noisy) printf "\nnoisy: the rounds (or the timed slices) of a row disagreed by >10%% (other work on the cores?);\nrerun, or raise BENCH_ROUNDS / BENCH_EPOCH_ROUNDS\n"
  }
'  "$tmp/mm_peer" "$tmp/mm_ember" "$tmp/op_ember" "$tmp/op_peer" "$tmp/scan_ember" "$tmp/scan_peer" "$tmp/startup" \
  "$tmp/ep_ember" "$tmp/ep_torch" "$tmp/dist_ember" "$tmp/dist_mpi" "$tmp/dist_torch"

if wants sort; then
  echo
  sh bench/sort.sh || { echo "bench: bench/sort.sh failed" >&2; status=1; }
fi
if wants ops; then
  echo
  sh bench/ops.sh || { echo "bench: bench/ops.sh: a case over its bound, or a failure" >&2; status=1; }
fi
if wants gpt; then
  echo
  sh bench/transformer.sh || { echo "bench: bench/transformer.sh: a target missed, or a failure" >&2; status=1; }
fi
if wants mmap; then
  echo
  run_lua bench/mmap_bench.lua ${BENCH_MMAP_MIB:-1024} 16 "$rounds" || { echo "bench: bench/mmap_bench.lua failed" >&2; status=1; }
fi
if wants checkpoint; then
  echo
  ./ember bench/checkpoint_bench.lua || { echo "bench: bench/checkpoint_bench.lua: a target missed, or a failure" >&2; status=1; }
fi
if wants bf16; then
  echo
  sh bench/bf16.sh || { echo "bench: bench/bf16.sh failed" >&2; status=1; }
fi
if wants loader; then
  echo
  # passive: the step's spinning OpenMP threads would take the worker's core (NOTES.md)
  OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} ./ember bench/loader_bench.lua ||
    { echo "bench: bench/loader_bench.lua failed" >&2; status=1; }
  $PY bench/loader_torch.py || echo "bench: bench/loader_torch.py failed (torch or PIL missing?)" >&2
  BENCH_PY=$PY ./ember bench/csv_bench.lua || { echo "bench: bench/csv_bench.lua failed" >&2; status=1; }
fi

exit $status
