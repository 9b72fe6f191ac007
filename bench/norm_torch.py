"""bench/norm_torch.py -- the peer of bench/norm_bench.lua: LayerNorm
(weight and bias) of [64*256, 128] and [4096, 768] float32 and
cross_entropy ("mean") of logits [768, 65] and [8192, 50257] float32,
forward + backward to the leaves, in PyTorch; same timing method
(bench/timing.py); on cuda each batch ends with torch.cuda.synchronize().

    /usr/bin/python3 bench/norm_torch.py [cpu|cuda] [case prefix]

Threads: torch.set_num_threads(OMP_NUM_THREADS, else the online cores).
Exit status 3 when torch cannot be imported.  Output: "# torch <version>",
"# device D threads N", then one "<case> <ms per call>" a line.
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
    only = sys.argv[2] if len(sys.argv) > 2 else ""
    threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    F = torch.nn.functional

    def leaf(t):
        return t.to(dev).requires_grad_(True)

    cases = []
    for s in ((64 * 256, 128), (4096, 768)):
        x, w, b = leaf(torch.randn(*s)), leaf(torch.randn(s[1])), leaf(torch.randn(s[1]))
        g = torch.randn(*s).to(dev)
        cases.append(("layer_norm_%dx%d" % s,
                      lambda x=x, w=w, b=b, g=g, n=s[1]:
                      F.layer_norm(x, (n,), w, b).backward(g)))
    for s in ((768, 65), (8192, 50257)):
        x = leaf(torch.randn(*s))
        t = torch.randint(0, s[1], (s[0],)).to(dev)
        cases.append(("cross_entropy_%dx%d" % s,
                      lambda x=x, t=t: F.cross_entropy(x, t).backward()))
    print("# torch %s" % torch.__version__)
    print("# device %s threads %d" % (dev, torch.get_num_threads()))
    run_cases(cases, only, sync)


if __name__ == "__main__":
    main()
