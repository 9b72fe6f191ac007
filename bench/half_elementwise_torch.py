"""bench/half_elementwise_torch.py -- the peer of
bench/half_elementwise_bench.lua: the same elementwise ops on 4M elements
in float32, bfloat16 and float16, timed with bench/timing.py's method, with
torch.set_num_threads(argv[1]) (the thread count Ember runs with).

Run with /usr/bin/python3 (the Debian python3-torch).  Exit status 3 when
torch cannot be imported.  Output: "# torch <version>", then one line
"<case> <ms>" per case (a case torch refuses on the CPU is left out).
"""
import sys

from timing import per_call

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(3)

N = 4 * 1024 * 1024


def gelu_fwd_bwd(x, y, xg):
    xg.grad = None
    F.gelu(xg).backward(y)


OPS = [
    ("add", lambda x, y, xg: x + y),
    ("mul_scalar", lambda x, y, xg: x * 2),
    ("gelu", lambda x, y, xg: F.gelu(x)),
    ("gelu_fwd_bwd", gelu_fwd_bwd),
]
DTYPES = [("float32", torch.float32), ("bfloat16", torch.bfloat16),
          ("float16", torch.float16)]


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    torch.manual_seed(1)
    print("# torch", torch.__version__)
    for name, op in OPS:
        for dname, dt in DTYPES:
            x, y = torch.randn(N).to(dt), torch.randn(N).to(dt)
            xg = x.detach().requires_grad_()

            def batch(reps, op=op, x=x, y=y, xg=xg):
                for _ in range(reps):
                    op(x, y, xg)

            try:
                batch(1)
            except RuntimeError:        # e.g. an op without a half kernel
                continue
            print(name + "_" + dname, "%.4f" % (per_call(batch, 1) * 1e3),
                  flush=True)


main()
