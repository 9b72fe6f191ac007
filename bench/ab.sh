#!/bin/sh
# bench/ab.sh -- two builds of Ember side by side, in one run: "before"
# and "after" of a change, on the same machine at the same time.
#
#   sh bench/ab.sh BEFORE_DIR AFTER_DIR
#
# Each DIR is a built checkout (its ./ember exists: `make` there).  A
# checkout of an earlier commit for BEFORE_DIR:
#   git worktree add /tmp/before <commit> && make -C /tmp/before all
#
# The cases are the Ember side of bench/run.sh's groups, run from each
# checkout's own folder with its own ./ember and bench/ scripts:
#   matmul    a:matmul(b), n = 256, 1024, and the conv GEMM shapes
#   op        a + b plain and recording, a tiny forward + backward
#             (bench/tiny_op.lua), one CNN training step (bench/cnn_step.lua)
#   cnn, mlp  a training epoch slice (bench/epoch.lua) at batch 32 and 128,
#             1 and 2 threads
# (AB_ONLY=matmul,op,cnn,mlp picks groups; AB_ROUNDS rounds, default 5;
# AB_EPOCH_ROUNDS, default 3.)
#
# Method: each round runs every case once on each side, the two sides of a
# case back to back (alternating which goes first), so that a neighbour
# that loads the machine for a while slows both halves of a pair alike.
# The table gives each side's median over the rounds and, as the ratio
# after/before, the median of the per-round ratios.  For times (ms, s)
# a ratio above 1 means "after" is slower; for rates (GFLOP/s, images/s)
# below 1.  The last column says "slower" when "after" loses more than 3%.
set -u
[ $# -eq 2 ] || { echo "usage: sh bench/ab.sh BEFORE_DIR AFTER_DIR" >&2; exit 2; }
A=$(cd "$1" && pwd) || exit 2
B=$(cd "$2" && pwd) || exit 2
for d in "$A" "$B"; do
  [ -x "$d/ember" ] || { echo "bench/ab.sh: $d/ember is not built (make -C $d all)" >&2; exit 2; }
done
rounds=${AB_ROUNDS:-5}
erounds=${AB_EPOCH_ROUNDS:-3}
only=${AB_ONLY:-matmul,op,cnn,mlp}
threads=${EMBER_NUM_THREADS:-$(nproc 2>/dev/null || echo 1)}
export EMBER_NUM_THREADS=$threads OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
wants() { case ",$only," in *",$1,"*) return 0 ;; esac; return 1; }

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# one: side (a|b), dir, then the command (run in dir); its "key value"
# lines go to $tmp/<side> prefixed by the case's tag
one() {
  side=$1 dir=$2 tag=$3
  shift 3
  (cd "$dir" && "$@") 2>/dev/null | sed -n "/^#/!s/^/$tag /p" >>"$tmp/$side" ||
    echo "bench/ab.sh: $* failed in $dir" >&2
}
# pair: both sides of one case, the first alternating by round
pair() {
  if [ $((r % 2)) = 1 ]; then one a "$A" "$@"; one b "$B" "$@"
  else one b "$B" "$@"; one a "$A" "$@"; fi
}

GEMMS="256 1024 64x726x288:NN 288x64x726:NN 288x726x64:TN 64x144x576:NN 576x64x144:NN 576x144x64:TN"
r=1
while [ "$r" -le "$rounds" ]; do
  echo "bench/ab.sh: round $r/$rounds" >&2
  if wants matmul; then
    for g in $GEMMS; do pair "mm" ./ember bench/matmul.lua "$g"; done
  fi
  if wants op; then
    pair "op" ./ember bench/tiny_op.lua
    pair "op" ./ember bench/cnn_step.lua
  fi
  r=$((r + 1))
done
r=1
while [ "$r" -le "$erounds" ]; do
  for kind in cnn mlp; do
    wants "$kind" || continue
    for bs in 32 128; do
      for t in 1 2; do
        echo "bench/ab.sh: epochs round $r/$erounds: $kind $bs x $t" >&2
        steps=$((6400 / bs))
        EMBER_NUM_THREADS=$t OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t \
          pair "${kind}_${bs}_$t" ./ember bench/epoch.lua "$kind" "$bs" "$t" $((1600 / bs)) "$steps"
      done
    done
  done
  r=$((r + 1))
done

echo "before: $A"
echo "after:  $B"
awk '
  function median(key,   n, i, j, t, v) {
    n = cnt[key]
    for (i = 1; i <= n; i++) v[i] = val[key, i]
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > t + 0; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return v[int((n + 1) / 2)]
  }
  # tag key value: the case is tag/key, except the GEMM lines "n gflops"
  { k = ($1 == "mm") ? "matmul " $2 " (GFLOP/s)" : ($1 == "op") ? $2 : $1 " " $2
    if ($1 != "mm" && $1 != "op" && $2 != "epoch" && $2 != "images_s") next
    side = FILENAME; sub(/.*\//, "", side)
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
    val[side k, ++cnt[side k]] = $3 }
  END {
    printf "%-28s %12s %12s %8s\n", "case", "before", "after", "after/before"
    for (i = 1; i <= nk; i++) {
      k = order[i]
      n = cnt["a" k] < cnt["b" k] ? cnt["a" k] : cnt["b" k]
      if (n == 0) continue
      delete cnt["pair"]
      for (j = 1; j <= n; j++) val["pair", ++cnt["pair"]] = val["b" k, j] / val["a" k, j]
      ratio = median("pair")
      rate = (k ~ /GFLOP|images_s/)
      slower = rate ? ratio < 0.97 : ratio > 1.03
      printf "%-28s %12s %12s %8.3f %s\n", k, median("a" k), median("b" k), ratio, slower ? "  slower (>3%)" : ""
    }
  }' "$tmp/a" "$tmp/b"
