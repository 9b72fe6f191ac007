"""bench/vmath_torch.py -- the peer of bench/vmath_bench.lua: exp, tanh,
sigmoid, GELU (erf and tanh forms), SiLU of 4M float32, forward alone and
forward + backward; softmax over the last dim of (4096, 64) and
(64, 50257) forward + backward; sum over the last dim of (4096, 64).  Same
timing method (bench/timing.py).

    /usr/bin/python3 bench/vmath_torch.py [cpu|cuda] [case prefix]

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
    torch.manual_seed(1)
    n = 4 * 1024 * 1024
    x = (torch.randn(n) * 3).to(dev)
    xl = x.detach().requires_grad_(True)
    g = torch.randn(n).to(dev)
    unary = [("exp", torch.exp), ("tanh", torch.tanh), ("sigmoid", torch.sigmoid),
             ("gelu_erf", F.gelu),
             ("gelu_tanh", lambda t: F.gelu(t, approximate="tanh")),
             ("silu", F.silu)]
    cases = []
    for name, f in unary:
        cases.append((name + "_4M_fwd", lambda f=f: f(x)))

        def fb(f=f):
            xl.grad = None
            f(xl).backward(g)
        cases.append((name + "_4M_fb", fb))
    for s in ((4096, 64), (64, 50257)):
        a = torch.randn(*s).to(dev).requires_grad_(True)
        ga = torch.randn(*s).to(dev)

        def sm(a=a, ga=ga):
            a.grad = None
            a.softmax(1).backward(ga)
        cases.append(("softmax_%dx%d_fb" % s, sm))
    r = torch.randn(4096, 64).to(dev)
    cases.append(("sum_4096x64", lambda: r.sum(1)))
    print("# torch %s" % torch.__version__)
    print("# device %s threads %d" % (dev, torch.get_num_threads()))
    run_cases(cases, only, sync)


if __name__ == "__main__":
    main()
