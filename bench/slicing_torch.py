"""bench/slicing_torch.py -- the peer of bench/slicing_bench.lua: the same
slicing assignments on 1M and 10M element float32 tensors, and the
per-call cost of t[:, 1:3] on a 4x4 tensor, in PyTorch.  Same method
(bench/timing.py).  Usage: slicing_torch.py [threads]; prints "case size
ms" (microseconds for the small reads).  Exit status 3 without torch.

Run with /usr/bin/python3 (the Debian python3-torch).
"""
import sys

from timing import per_call

try:
    import torch
except ImportError:
    sys.exit(3)


def main():
    if len(sys.argv) > 1:
        torch.set_num_threads(int(sys.argv[1]))
    for n in (1000, 10000):
        size = "1M" if n == 1000 else "10M"
        t = torch.zeros(1000, n)
        u = torch.ones(n // 2)
        idx = torch.arange(0, 1000, 2)
        h = n // 2

        def fill_half(reps):
            for _ in range(reps):
                t[:, 0:h] = 0

        def row_half(reps):
            for _ in range(reps):
                t[:, 0:h] = u

        def step2(reps):
            for _ in range(reps):
                t[:, 0:n:2] = 0

        def index_rows(reps):
            for _ in range(reps):
                t[idx] = 0

        for name, fn in (("fill_half", fill_half), ("row_half", row_half),
                         ("step2", step2), ("index_rows", index_rows)):
            print(f"{name} {size} {per_call(fn, 1) * 1e3:.4f}")
    s = torch.zeros(4, 4)

    def read_small(reps):
        for _ in range(reps):
            r = s[:, 1:3]
        return r

    def narrow_small(reps):
        for _ in range(reps):
            r = s.narrow(1, 1, 2)
        return r

    print(f"read_small 16 {per_call(read_small) * 1e6:.4f}")
    print(f"read_small_literal 16 {per_call(read_small) * 1e6:.4f}")
    print(f"narrow_small 16 {per_call(narrow_small) * 1e6:.4f}")


if __name__ == "__main__":
    main()
