"""bench/bf16_matmul_torch.py -- PyTorch's CPU bfloat16 and float32 matmul,
the peer of bench/bf16_matmul.lua: the same sizes and timing method
(bench/timing.py), torch.set_num_threads(EMBER_NUM_THREADS).  Output:
"# torch <version>", then "<n> <bf16 GFLOP/s> <f32 GFLOP/s>" a line."""
import os
import sys

import torch

import timing

torch.set_num_threads(int(os.environ.get("EMBER_NUM_THREADS", os.cpu_count())))
print("# torch %s" % torch.__version__)
torch.manual_seed(42)
for s in sys.argv[1:] or ["1024", "2048", "4096"]:
    n = int(s)
    a32, b32 = torch.randn(n, n), torch.randn(n, n)
    a16, b16 = a32.bfloat16(), b32.bfloat16()

    def gflops(a, b):
        def batch(reps):
            for _ in range(reps):
                torch.matmul(a, b)
        return 2 * n ** 3 / timing.per_call(batch, 1) * 1e-9
    print("%d %.1f %.1f" % (n, gflops(a16, b16), gflops(a32, b32)), flush=True)
