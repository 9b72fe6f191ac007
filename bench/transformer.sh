#!/bin/sh
# bench/transformer.sh -- issue 18's table in one run: the char GPT of
# examples/char_gpt.lua (bench/gpt_bench.lua) against nanoGPT's model.py
# in PyTorch (bench/gpt_torch.py), causal attention
# (bench/attention_bench.lua vs attention_torch.py) and char-rnn's LSTM
# (bench/lstm_bench.lua vs lstm_torch.py).  Prints
# "case  Ember  PyTorch  ratio  target  met/missed" a row, then names the
# missed rows and exits 1 if there is one.  Run from the repository root
# after `make`; bench/run.sh runs it as its "gpt" group
# (`make bench BENCH_ONLY=gpt`).
#
# Rows (ratio = Ember / PyTorch; time and memory lower is better):
#   GPT training step, ms, at 2 threads and 1 (target <= 0.7)
#   GPT validation loss after BENCH_GPT_STEPS steps (default 2000, the
#     example's full run), each side's mean over BENCH_GPT_EVAL_ITERS
#     validation batches (default 200); target: within 0.03 (the ratio
#     column holds the difference)
#   GPT peak RSS of that training run, MiB (/usr/bin/time's %M; <= 0.4)
#   GPT sampling 500 tokens, ms: Ember's key/value cache against nanoGPT's
#     generate, which re-runs the window a token (<= 0.5)
#   attention forward + backward, causal, B 8, 8 heads, head 64, L 256 and
#     1024, ms (<= 0.7)
#   attention peak memory, causal, L 4096, one head of 64: the growth of
#     the process's peak RSS over one forward + backward, bytes (Ember's
#     must stay under one L x L float32 buffer, 64 MiB)
#   char-rnn LSTM training step, ms (<= 0.8)
# Threads: EMBER_NUM_THREADS (default the online cores) on both sides
# (torch.set_num_threads), but the 1-thread step row; PyTorch at its best,
# OPENBLAS_NUM_THREADS=1.  The timed cases run BENCH_ROUNDS rounds
# (default 3), the sides alternating; each side's column is its median and
# the ratio the median of the per-round ratios.  The training run, the
# sampling and the memory rows run once.
set -e
cd "$(dirname "$0")/.."
PY=${BENCH_PYTHON:-/usr/bin/python3}
threads=${EMBER_NUM_THREADS:-$(getconf _NPROCESSORS_ONLN)}
rounds=${BENCH_ROUNDS:-3}
steps=${BENCH_GPT_STEPS:-2000}
eval_iters=${BENCH_GPT_EVAL_ITERS:-200}
for v in "$threads" "$rounds" "$steps" "$eval_iters"; do
  case $v in ''|*[!0-9]*|0) echo "transformer.sh: EMBER_NUM_THREADS, BENCH_ROUNDS, BENCH_GPT_STEPS and BENCH_GPT_EVAL_ITERS must be positive integers" >&2; exit 1 ;; esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ember_at T CMD / torch_at T CMD: CMD with T threads on that side
ember_at() { t=$1; shift; EMBER_NUM_THREADS=$t OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t "$@"; }
torch_at() { t=$1; shift; EMBER_NUM_THREADS=$t OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=1 "$@" 2>/dev/null || :; }

# rounds TAG N T EMBER_ARGS -- TORCH_ARGS: N alternating runs of each side
# at T threads, outputs in $tmp/TAG.e.<i> and $tmp/TAG.t.<i>
rounds() {
  tag=$1 n=$2 t=$3; shift 3
  eargs="" targs="" side=e
  for a in "$@"; do
    if [ "$a" = "--" ]; then side=t; elif [ $side = e ]; then eargs="$eargs $a"; else targs="$targs $a"; fi
  done
  i=1
  while [ "$i" -le "$n" ]; do
    # shellcheck disable=SC2086
    ember_at "$t" ./ember $eargs >"$tmp/$tag.e.$i"
    # shellcheck disable=SC2086
    torch_at "$t" "$PY" $targs >"$tmp/$tag.t.$i"
    i=$((i + 1))
  done
}

# row LABEL TAG KEY TARGET KIND: one table row from the rounds of TAG.
# KIND ratio: met when the median per-round ratio <= TARGET; diff: when
# |Ember - PyTorch| <= TARGET; under: when Ember's value < TARGET; info:
# no target (context).
row() {
  label=$1 tag=$2 key=$3 target=$4 kind=$5
  : >"$tmp/pairs"
  for f in "$tmp/$tag".e.*; do
    i=${f##*.}
    e=$(awk -v k="$key" '$1 == k { print $2 }' "$f")
    t=$(awk -v k="$key" '$1 == k { print $2 }' "$tmp/$tag.t.$i")
    echo "${e:--} ${t:--}" >>"$tmp/pairs"
  done
  awk -v label="$label" -v target="$target" -v kind="$kind" '
    function med(a, n,   i, j, x) {
      for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
      return n ? a[int((n + 1) / 2)] : "-"
    }
    function fmt(x, kind) {
      if (x == "-") return x
      return kind == "diff" ? sprintf("%.4f", x) : x + 0 >= 1e4 ? sprintf("%d", x) : sprintf("%.4g", x)
    }
    $1 != "-" { e[++ne] = $1 }
    $2 != "-" { t[++nt] = $2 }
    $1 != "-" && $2 != "-" && $2 != 0 { r[++nr] = $1 / $2 }
    END {
      em = med(e, ne); tm = med(t, nt); rm = nr ? med(r, nr) : "-"
      if (kind == "diff") rm = (em == "-" || tm == "-") ? "-" : em - tm
      if (kind == "under") ok = (em != "-" && em + 0 < target + 0)
      else if (kind == "diff") ok = (rm != "-" && (rm < 0 ? -rm : rm) <= target + 0)
      else ok = (rm != "-" && rm + 0 <= target + 0)
      tgt = kind == "diff" ? "diff <= " target : kind == "under" ? "< " target : "<= " target
      verdict = ok ? "met" : "MISSED"
      if (kind == "info") { tgt = "(context)"; verdict = "" }
      printf "%s|%s|%s|%s|%s|%s\n", label, fmt(em, kind), fmt(tm, kind), rm == "-" ? "-" : sprintf(kind == "diff" ? "%+.3f" : "%.2f", rm),
             tgt, verdict
    }' "$tmp/pairs" >>"$tmp/table"
}

rounds step2 "$rounds" "$threads" bench/gpt_bench.lua step -- bench/gpt_torch.py step
rounds step1 "$rounds" 1 bench/gpt_bench.lua step -- bench/gpt_torch.py step
rounds attn "$rounds" "$threads" bench/attention_bench.lua cpu -- bench/attention_torch.py cpu
rounds lstm "$rounds" "$threads" bench/lstm_bench.lua -- bench/lstm_torch.py
rounds sample 1 "$threads" bench/gpt_bench.lua sample -- bench/gpt_torch.py sample
rounds mem 1 "$threads" bench/gpt_bench.lua attn_mem -- bench/gpt_torch.py attn_mem

# the training run: the example itself against the peer's loop, each
# under /usr/bin/time for its peak RSS; "val_loss", "train_s", "rss_mib"
ember_at "$threads" /usr/bin/time -f "rss_kib %M" -o "$tmp/time.e" ./ember examples/char_gpt.lua \
  --steps "$steps" --eval-every "$steps" --eval-iters "$eval_iters" --sample 0 >"$tmp/run.e"
awk '/^step / { for (i = 1; i < NF - 1; i++) if ($i == "val" && $(i + 1) == "loss") v = $(i + 2) }
     /^trained / { print "train_s", $(NF - 1) }
     END { print "val_loss", v }' "$tmp/run.e" >"$tmp/train.e.1"
torch_at "$threads" /usr/bin/time -f "rss_kib %M" -o "$tmp/time.t" "$PY" bench/gpt_torch.py train \
  "$steps" "$eval_iters" >"$tmp/train.t.1"
[ -s "$tmp/time.t" ] || echo "rss_kib -" >"$tmp/time.t"
# the child's own rss_kib line is the peer's VmHWM: keep /usr/bin/time's, as for Ember
grep -v '^rss_kib' "$tmp/train.t.1" >"$tmp/t1" || :
mv "$tmp/t1" "$tmp/train.t.1"
awk '$1 == "rss_kib" { print "rss_mib", ($2 == "-" ? "-" : $2 / 1024) }' "$tmp/time.e" >>"$tmp/train.e.1"
awk '$1 == "rss_kib" { print "rss_mib", ($2 == "-" ? "-" : $2 / 1024) }' "$tmp/time.t" >>"$tmp/train.t.1"

: >"$tmp/table"
row "GPT training step, $threads threads, ms" step2 gpt_step 0.7 ratio
row "GPT training step, 1 thread, ms" step1 gpt_step 0.7 ratio
row "GPT val loss after $steps steps" train val_loss 0.03 diff
row "GPT training run, s" train train_s - info
row "GPT training run peak RSS, MiB" train rss_mib 0.4 ratio
row "GPT sampling 500 tokens, ms" sample sample_500 0.5 ratio
row "attention fwd+bwd causal L256, ms" attn sdpa_causal_fwd_bwd_L256 0.7 ratio
row "attention fwd+bwd causal L1024, ms" attn sdpa_causal_fwd_bwd_L1024 0.7 ratio
row "attention peak bytes, L4096 causal 1 head" mem attn_peak_bytes 67108864 under
row "char-rnn LSTM training step, ms" lstm lstm_step 0.8 ratio

echo "# issue 18, float32, $threads threads (but the 1-thread row), $rounds rounds, ember vs $("$PY" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null || echo "no torch"), load average $(cut -d' ' -f1-3 /proc/loadavg)"
awk -F'|' '
  BEGIN { printf "%-44s %12s %12s %8s %14s %s\n", "case", "Ember", "PyTorch", "ratio", "target", "" }
  { printf "%-44s %12s %12s %8s %14s %s\n", $1, $2, $3, $4, $5, $6
    if ($6 == "MISSED") missed = missed "\n#   " $1 }
  END { if (missed != "") { print "# missed:" missed; exit 1 }
        print "# every target met" }' "$tmp/table"
