"""bench/tiny_op_torch.py -- the peer of bench/tiny_op.lua: per-call time
of `a + b` on two 4-element float32 tensors in PyTorch, and of an empty
loop for scale.  Same method: batches long enough for >= BATCH_S seconds,
the median of NBATCH batches, nothing subtracted.  Default grad mode, as a
user's script has it (neither tensor requires grad); one intra-op thread,
which is all a 4-element op can use.

Run with /usr/bin/python3 (the Debian python3-torch).  Exit status 3 when
torch cannot be imported, so bench/run.sh can say so.
Also `a + b` on two tensors that require grad, and the tiny forward +
backward `(a + b).sum().backward()`.
Output: a comment line "# torch <version>", then "add", "add_grad",
"fwd_bwd" and "loop", each with microseconds.
"""
import sys

from timing import per_call

try:
    import torch
except ImportError:
    sys.exit(3)


def main():
    torch.set_num_threads(1)
    a, b = torch.ones(4), torch.ones(4)

    def add_batch(reps):
        for _ in range(reps):
            c = a + b
        return c

    def loop_batch(reps):
        for _ in range(reps):
            c = a
        return c

    ga = torch.ones(4, requires_grad=True)
    gb = torch.ones(4, requires_grad=True)

    def add_grad_batch(reps):
        for _ in range(reps):
            c = ga + gb
        return c

    def fwd_bwd_batch(reps):
        for _ in range(reps):
            (ga + gb).sum().backward()

    add = per_call(add_batch)
    add_grad = per_call(add_grad_batch)
    fwd_bwd = per_call(fwd_bwd_batch)
    loop = per_call(loop_batch)
    print("# torch %s" % torch.__version__)
    print("add %.4f\nadd_grad %.4f\nfwd_bwd %.4f\nloop %.4f"
          % (add * 1e6, add_grad * 1e6, fwd_bwd * 1e6, loop * 1e6))


if __name__ == "__main__":
    main()
