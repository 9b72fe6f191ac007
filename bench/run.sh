#!/bin/sh
# bench/run.sh -- Ember beside its peers, in one run, as one table.
#
#   matmul   Ember's a:matmul(b), float32 [n,n] x [n,n]   (bench/matmul.lua)
#            vs cblas_sgemm called directly from C       (bench/matmul_c)
#   tiny op  Ember's a + b on two 4-element tensors     (bench/tiny_op.lua)
#            (also recording for autograd, and a tiny forward + backward)
#   cnn step one training step (forward, loss, backward, Adam) of the
#            DESIGN.md network, batch 32    (bench/cnn_step.lua)
#            vs PyTorch's, OPENBLAS_NUM_THREADS=1 (bench/cnn_step_torch.py)
#            vs PyTorch's, from /usr/bin/python3          (bench/tiny_op_torch.py)
#            (BENCH_PYTHON overrides; without torch the peer column says so)
#
# Both sides get the same thread count: EMBER_NUM_THREADS, default the
# number of online cores, is exported as OPENBLAS_NUM_THREADS too.  Each
# program reports the median of its own timed batches; the two sides then
# run BENCH_ROUNDS times (default 5), alternating (matmul one size at a
# time, so the two figures of a pair are taken within seconds of each
# other).  The table shows each side's median over the rounds, and as the
# ratio the median of the per-round (paired) ratios, so a neighbour that
# loads the cores for a while slows both halves of a pair alike rather
# than one column.  A row whose rounds disagree by more than 10% is marked
# noisy.
#
# Ember runs through ./ember when it has been built, else through the stock
# lua5.4 with the library from lua/ and the C module from build/.
# Called by `make bench` from the repository root; works on its own too.

cd "$(dirname "$0")/.." || exit 1

threads=${EMBER_NUM_THREADS:-$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}
rounds=${BENCH_ROUNDS:-5}
EMBER_NUM_THREADS=$threads
OPENBLAS_NUM_THREADS=$threads
OMP_NUM_THREADS=$threads
export EMBER_NUM_THREADS OPENBLAS_NUM_THREADS OMP_NUM_THREADS
PY=${BENCH_PYTHON:-/usr/bin/python3}   # the Debian python3-torch lives here
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0

if [ -x ./ember ]; then
  runner="./ember"
else
  runner="lua5.4 (lua/ + build/ember/core.so; ./ember not built)"
  [ -f build/ember/core.so ] || make --no-print-directory build/ember/core.so >&2 || exit 1
fi
[ -x bench/matmul_c ] || make --no-print-directory -C bench >&2 || exit 1

run_lua() {
  if [ -x ./ember ]; then
    ./ember "$@"
  else
    lua5.4 -e 'package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
               package.cpath = "build/?.so;" .. package.cpath' "$@"
  fi
}

# Can the peer of the tiny op run at all?  (exit 3: torch is not importable)
torch=yes
if [ ! -x "$PY" ] || ! "$PY" -c 'import torch' >/dev/null 2>&1; then torch=no; fi

echo "bench: $rounds rounds, $threads threads each side; Ember via $runner" >&2
r=1
while [ "$r" -le "$rounds" ]; do
  printf 'bench: round %d/%d ...\n' "$r" "$rounds" >&2
  for n in 256 512 1024 2048; do
    bench/matmul_c "$n"           >>"$tmp/mm_peer"  || { echo "bench: bench/matmul_c $n failed" >&2; status=1; }
    run_lua bench/matmul.lua "$n" >>"$tmp/mm_ember" || { echo "bench: bench/matmul.lua $n failed" >&2; status=1; }
  done
  run_lua bench/tiny_op.lua     >>"$tmp/op_ember" || { echo "bench: bench/tiny_op.lua failed" >&2; status=1; }
  run_lua bench/cnn_step.lua    >>"$tmp/op_ember" || { echo "bench: bench/cnn_step.lua failed" >&2; status=1; }
  if [ "$torch" = yes ]; then
    "$PY" bench/tiny_op_torch.py >>"$tmp/op_peer" || { echo "bench: bench/tiny_op_torch.py failed" >&2; status=1; }
    # PyTorch's best configuration: its own pool, OpenBLAS single-threaded
    OPENBLAS_NUM_THREADS=1 "$PY" bench/cnn_step_torch.py >>"$tmp/op_peer" || { echo "bench: bench/cnn_step_torch.py failed" >&2; status=1; }
  fi
  r=$((r + 1))
done
touch "$tmp/mm_peer" "$tmp/mm_ember" "$tmp/op_ember" "$tmp/op_peer"

# One awk program reads the four outputs (tagged by file) and prints the
# table.  Lines starting with '#' carry versions and thread counts.
awk -v torch="$torch" -v threads="$threads" -v rounds="$rounds" -v runner="$runner" -v py="$PY" '
  function median(key,   n, i, j, t, v) {
    n = cnt[key]; if (n == 0) return ""
    for (i = 1; i <= n; i++) v[i] = val[key, i]
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return v[int((n + 1) / 2)]
  }
  function add(key, x) { val[key, ++cnt[key]] = x }
  FILENAME ~ /mm_peer$/  && /^# openblas/ { blas = $3 " " $4; peer_thr = $NF; next }
  FILENAME ~ /mm_ember$/ && /^# threads/  { ember_thr = $3; next }
  FILENAME ~ /op_peer$/  && /^# torch/    { torchv = $3; next }
  /^#/ { next }
  FILENAME ~ /mm_peer$/  { add("mmp" $1, $2); next }
  FILENAME ~ /mm_ember$/ { add("mme" $1, $2); next }
  FILENAME ~ /op_ember$/ { add("ope" $1, $2); next }
  FILENAME ~ /op_peer$/  { add("opp" $1, $2); next }
  # max/min over the rounds of one side, as a spread: 1.10 = 10% apart
  function spread(key,   i, lo, hi) {
    lo = hi = val[key, 1] + 0
    for (i = 2; i <= cnt[key]; i++) {
      if (val[key, i] + 0 < lo) lo = val[key, i] + 0
      if (val[key, i] + 0 > hi) hi = val[key, i] + 0
    }
    return lo > 0 ? hi / lo : 1
  }
  # One line of the table: Ember key, peer key, the target on e/p and
  # whether a higher ("hi") or lower ("lo") ratio is better.
  function row(name, ke, kp, target, better,   e, p, i, ratio, verdict) {
    e = median(ke); p = median(kp)
    if (e == "") e = "failed"
    if (p == "") p = "failed"
    ratio = "-"; verdict = ""
    if (e != "failed" && p != "failed" && p + 0 > 0) {
      if (cnt[ke] == cnt[kp]) {          # median of the paired ratios
        delete cnt["pair"]
        for (i = 1; i <= cnt[ke]; i++) add("pair", val[ke, i] / val[kp, i])
        ratio = median("pair")
      } else ratio = e / p               # a round failed: no pairs
      if (better == "hi") verdict = sprintf(">= %.3f %s", target, ratio >= target ? "met" : "MISSED")
      if (better == "lo") verdict = sprintf("<  %.3f %s", target, ratio <  target ? "met" : "MISSED")
      if (better != "info" && (spread(ke) > 1.10 || spread(kp) > 1.10)) { verdict = verdict "  (noisy: rounds >10% apart)"; noisy = 1 }
      ratio = sprintf("%.3f", ratio)
    }
    printf "%-26s %10s %10s %7s   %s\n", name, e, p, ratio, verdict
  }
  END {
    printf "\nEmber benchmarks: %d threads, %d rounds; figures are medians over the rounds (each round\n", threads, rounds
    printf "the median of 5 timed batches), ratios the median of the per-round Ember/peer ratios\n"
    printf "peers: %s via cblas_sgemm from C; ", (blas == "" ? "OpenBLAS" : blas)
    printf "%s\n", (torch == "yes" ? "PyTorch " torchv " (" py ", 1 thread)" : "PyTorch not installed")
    printf "Ember: %s\n", runner
    if (ember_thr != "" && peer_thr != "" && ember_thr != peer_thr)
      printf "WARNING: thread counts differ (Ember %s, OpenBLAS %s)\n", ember_thr, peer_thr
    printf "\n%-26s %10s %10s %7s   %s\n", "case", "Ember", "peer", "ratio", "target"
    printf "%-26s %10s %10s %7s   %s\n", "----", "-----", "----", "-----", "------"
    split("256 512 1024 2048", ns, " ")
    for (i = 1; i <= 4; i++)
      row(sprintf("matmul %4d  GFLOP/s", ns[i]), "mme" ns[i], "mmp" ns[i], 0.95, "hi")
    printf "  (ratio = Ember GFLOP/s / OpenBLAS GFLOP/s: higher is better; target >= 0.95)\n"
    if (torch == "yes") {
      row("a + b, 4 elts  us/call", "opeadd", "oppadd", 1 / 3, "lo")
      row("a + b, grad     us/call", "opeadd_grad", "oppadd_grad", 0.25, "lo")
      row("fwd+bwd         us/call", "opefwd_bwd", "oppfwd_bwd", 0.2, "lo")
      row("empty loop     us/iter", "opeloop", "opploop", 0, "info")
      row("CNN step bs32  ms", "opecnn_step", "oppcnn_step", 0, "info")
      printf "  (ratio = Ember time / PyTorch time: lower is better; target < 1/3 for a + b;\n"
      printf "   a + b with requires_grad and (a + b):sum():backward(): issue 6 targets;\n"
      printf "   the empty loop (Lua vs Python) is context, included in both a + b figures;\n"
      printf "   CNN step: the training step of the DESIGN.md network, targets in issue 6)\n"
    } else {
      printf "%-26s %10s   %s\n", "a + b, 4 elts  us/call", (median("opeadd") == "" ? "failed" : median("opeadd")), "PyTorch: not installed (apt-get install python3-torch)"
      printf "%-26s %10s\n", "empty loop     us/iter", median("opeloop")
    }
    if (noisy) printf "noisy: the rounds of a row disagreed by >10%% (other work on the cores?); rerun, or raise BENCH_ROUNDS\n"
  }
' "$tmp/mm_peer" "$tmp/mm_ember" "$tmp/op_ember" "$tmp/op_peer"

exit $status
