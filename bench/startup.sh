#!/bin/sh
# bench/startup.sh -- start-up cost: wall time and peak resident memory of
#   ./ember -e 'require "ember"'            (EMBER_CMD overrides the ember)
#   /usr/bin/python3 -c 'import torch'      (BENCH_PYTHON overrides python3)
# and, for scale, of /bin/true measured the same way (what spawning any
# process and reading the clock around it costs here).
#
#   sh bench/startup.sh [RUNS]      (default 7; run.sh passes BENCH_STARTUP_RUNS)
#
# Each program runs once untimed (so the page cache holds its files: we
# measure a warm start, the one a user sees from the second run on), then
# RUNS times for wall time and RUNS times under /usr/bin/time for the
# peak RSS ("%M", KiB), the sides alternating run by run.  Wall time is
# `date +%s%N` before and after a plain run (the RSS runs are separate, so
# /usr/bin/time's own start is not in the wall figure); it includes the
# ~1 ms that forking `date` costs, as the /bin/true line shows.
# Output, one line per run and program: "<prog>_wall <ms>" and
# "<prog>_rss <MiB>", prog in ember, torch, true; torch's lines are absent
# when torch cannot be imported.  bench/run.sh takes the medians.
cd "$(dirname "$0")/.." || exit 1

runs=${1:-${BENCH_STARTUP_RUNS:-7}}
case $runs in ''|*[!0-9]*|0) echo "startup.sh: RUNS must be a positive integer, got '$runs'" >&2; exit 1 ;; esac
PY=${BENCH_PYTHON:-/usr/bin/python3}
EMBER=${EMBER_CMD:-./ember}
[ -x "$EMBER" ] || { echo "startup.sh: $EMBER not built (run make)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "startup.sh: /usr/bin/time not installed (apt-get install time)" >&2; exit 1; }
case $(date +%N) in ''|*[!0-9]*) echo "startup.sh: date +%N unsupported (GNU date needed)" >&2; exit 1 ;; esac
tmp=$(mktemp) || exit 1
trap 'rm -f "$tmp"' EXIT INT TERM

run_ember() { "$EMBER" -e 'require "ember"'; }
run_torch() { "$PY" -c 'import torch'; }
run_true() { /bin/true; }

torch=yes
run_torch >/dev/null 2>&1 || torch=no
progs="ember true"
[ "$torch" = yes ] && progs="ember torch true"

for p in $progs; do run_$p >/dev/null || { echo "startup.sh: $p failed" >&2; exit 1; }; done
i=1
while [ "$i" -le "$runs" ]; do
  for p in $progs; do
    t0=$(date +%s%N)
    run_$p >/dev/null
    t1=$(date +%s%N)
    echo "${p}_wall $(( (t1 - t0) / 1000 ))" | awk '{ printf "%s %.2f\n", $1, $2 / 1000 }'
    case $p in
      ember) /usr/bin/time -f %M -o "$tmp" "$EMBER" -e 'require "ember"' ;;
      torch) /usr/bin/time -f %M -o "$tmp" "$PY" -c 'import torch' ;;
      true)  /usr/bin/time -f %M -o "$tmp" /bin/true ;;
    esac
    awk -v p="$p" '{ printf "%s_rss %.1f\n", p, $1 / 1024 }' "$tmp"
  done
  i=$((i + 1))
done
