"""bench/sort_torch.py -- the peer of bench/sort_bench.lua: the same
sorting and selection cases in PyTorch (float32 randn inputs made once;
torch.sort, argsort, topk), timed with bench/timing.py's method, on
torch.set_num_threads(EMBER_NUM_THREADS or the online cores) threads, the
count Ember uses.

Run with /usr/bin/python3 (the Debian python3-torch).  Exit status 3 when
torch cannot be imported.  Output: a comment line "# torch <version>",
then one line per case, "name ms".
"""
import os
import sys

import timing
from timing import per_call

try:
    import torch
except ImportError:
    sys.exit(3)


def main():
    torch.set_num_threads(int(os.environ.get("EMBER_NUM_THREADS") or os.cpu_count()))
    timing.NBATCH, timing.BATCH_S = 5, 0.3
    torch.manual_seed(1)
    x1m, x10m = torch.randn(1000000), torch.randn(10000000)
    sq, vocab = torch.randn(1000, 1000), torch.randn(64, 50257)
    cases = [
        ("sort_1M", lambda: torch.sort(x1m)),
        ("sort_10M", lambda: torch.sort(x10m)),
        ("sort_1000x1000", lambda: torch.sort(sq, 1)),
        ("argsort_1M", lambda: torch.argsort(x1m)),
        ("topk10_10M", lambda: torch.topk(x10m, 10)),
        ("topk1000_10M", lambda: torch.topk(x10m, 1000)),
        ("topk10_vocab", lambda: torch.topk(vocab, 10, 1)),
        ("topk1000_vocab", lambda: torch.topk(vocab, 1000, 1)),
    ]
    want = sys.argv[1] if len(sys.argv) > 1 else None
    print("# torch", torch.__version__)
    for name, f in cases:
        if want and want != name:
            continue

        def batch(reps, f=f):
            for _ in range(reps):
                r = f()
            return r
        print("%s %.3f" % (name, per_call(batch, 1) * 1e3), flush=True)


if __name__ == "__main__":
    main()
