"""bench/scan_torch.py -- the peer of bench/scan_bench.lua: the same
cumulative ops on the same shapes in PyTorch (cumsum of 1M and 10M float32,
of [1000, 10000] along dim 2 and dim 1, cumprod and cummax of 10M float32,
cumsum of 10M float64), inputs uniform in [0.5, 1.5] (cumprod's in
[1 - 1e-3, 1 + 1e-3]), same timing method
(bench/timing.py); on cuda each batch ends with torch.cuda.synchronize().

    /usr/bin/python3 bench/scan_torch.py [cpu|cuda]

Threads: torch.set_num_threads(OMP_NUM_THREADS, else the online cores).
Exit status 3 when torch cannot be imported, so bench/run.sh can say so.
Output: "# torch <version>", "# device D threads N", then one
"<case> <ms per call>" a line.
"""
import os
import sys

from timing import run_cases

try:
    import torch
except ImportError:
    sys.exit(3)


def main():
    dev = sys.argv[1] if len(sys.argv) > 1 else "cpu"
    threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

    def inp(*shape, dtype=torch.float32):
        return (torch.rand(*shape, dtype=dtype) + 0.5).to(dev)

    x1m, x10m, m = inp(1000000), inp(10000000), inp(1000, 10000)
    d10m = inp(10000000, dtype=torch.float64)
    p10m = (torch.rand(10000000) * 2e-3 + (1 - 1e-3)).to(dev)
    cases = [
        ("cumsum_1M", lambda: x1m.cumsum(0)),
        ("cumsum_10M", lambda: x10m.cumsum(0)),
        ("cumsum_1000x10000_dim2", lambda: m.cumsum(1)),
        ("cumsum_1000x10000_dim1", lambda: m.cumsum(0)),
        ("cumprod_10M", lambda: p10m.cumprod(0)),
        ("cummax_10M", lambda: x10m.cummax(0)),
        ("cumsum_f64_10M", lambda: d10m.cumsum(0)),
    ]
    print("# torch %s" % torch.__version__)
    print("# device %s threads %d" % (dev, torch.get_num_threads()))
    run_cases(cases, "", sync)


if __name__ == "__main__":
    main()
