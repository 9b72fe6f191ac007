"""bench/multinomial_torch.py -- the peer of bench/multinomial_bench.lua:
torch.multinomial on the same cases, timed with bench/timing.py's method,
with torch.set_num_threads(argv[1]) (the thread count Ember runs with).

Run with /usr/bin/python3 (the Debian python3-torch).  Exit status 3 when
torch cannot be imported.  Output: "# torch <version>", then one line
"<case> <ms>" per case.
"""
import sys

from timing import per_call

try:
    import torch
except ImportError:
    sys.exit(3)

# name, rows (0: 1-D), categories, samples, replacement
CASES = [
    ("1M_n1_repl", 0, 1000000, 1, True),
    ("1M_n1000_repl", 0, 1000000, 1000, True),
    ("10M_n1_repl", 0, 10000000, 1, True),
    ("10M_n1000_repl", 0, 10000000, 1000, True),
    ("64x50257_n1_repl", 64, 50257, 1, True),
    ("1M_n100_norepl", 0, 1000000, 100, False),
]


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    torch.manual_seed(1)
    print("# torch", torch.__version__)
    for name, rows, k, n, repl in CASES:
        p = torch.rand(rows, k) if rows else torch.rand(k)

        def batch(reps, p=p, n=n, repl=repl):
            for _ in range(reps):
                r = torch.multinomial(p, n, repl)
            return r

        print(name, "%.4f" % (per_call(batch, 1) * 1e3), flush=True)


main()
