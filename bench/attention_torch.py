"""bench/attention_torch.py -- the peer of bench/attention_bench.lua:
causal attention forward + backward, float32, B 8, 8 heads, head size 64,
L 256 and 1024, as nanoGPT's manual path computes it in torch 1.13 (no
scaled_dot_product_attention there): att = q k^T * (1/sqrt(64)),
masked_fill(upper triangle, -inf), softmax, att v; the loss the sum of the
output times a fixed random tensor.  Same timing method (bench/timing.py);
on cuda each batch ends with torch.cuda.synchronize().

    /usr/bin/python3 bench/attention_torch.py [cpu|cuda]

Threads: torch.set_num_threads(OMP_NUM_THREADS, else the online cores).
Exit status 3 when torch cannot be imported, so bench/run.sh can say so.
Output: "# torch <version>", "# device D threads N", then one
"<case> <ms per call>" a line.
"""
import math
import os
import sys

from timing import per_call

try:
    import torch
except ImportError:
    sys.exit(3)


def main():
    dev = sys.argv[1] if len(sys.argv) > 1 else "cpu"
    threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    print("# torch %s" % torch.__version__)
    print("# device %s threads %d" % (dev, torch.get_num_threads()))
    for L in (256, 1024):
        torch.manual_seed(1)
        q, k, v = (torch.randn(8, 8, L, 64, device=dev, requires_grad=True) for _ in range(3))
        w = torch.randn(8, 8, L, 64, device=dev)
        hide = torch.ones(L, L, dtype=torch.bool, device=dev).triu(1)

        def batch(reps):
            for _ in range(reps):
                q.grad = k.grad = v.grad = None
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(64))
                att = att.masked_fill(hide, float("-inf")).softmax(-1)
                (att @ v).backward(w)
            sync()
        print("sdpa_causal_fwd_bwd_L%d %.4f" % (L, per_call(batch, 1) * 1e3))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
