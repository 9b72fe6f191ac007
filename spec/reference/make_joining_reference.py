#!/usr/bin/python3
"""Reference values for spec/core/joining_spec.lua (split, chunk, unbind, flip,
roll, tile, repeat_interleave), computed with PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_joining_reference.py

It writes spec/reference/joining_values.lua; the spec only reads that file.

The input of a case with shape s is arange(numel(s)) + 1 in float64, viewed
as s (the spec converts it to each dtype it checks).  The gradient is that
of sum over the outputs i of sum(out_i * w_i) with w_i = (arange(numel) + 1)
* i, so every expected value is an exact integer.  Cases store Ember's
conventions (1-based dims, 1-based repeat counts position); this script
converts when it calls PyTorch.
"""
import torch

import luavalues


def d0(d):
    """An Ember dim (1-based, negative from the end) as PyTorch's."""
    return d - 1 if d > 0 else d


def dims0(ds):
    return [d0(d) for d in ds] if isinstance(ds, list) else d0(ds)


def run(op, x, args):
    """Ember's op and arguments applied to x; a list of outputs."""
    if op == "split":
        sizes = args[0]
        return list(torch.split(x, sizes, d0(args[1])))
    if op == "chunk":
        return list(torch.chunk(x, args[0], d0(args[1])))
    if op == "unbind":
        return list(torch.unbind(x, d0(args[0])))
    if op == "flip":
        ds = args[0] if isinstance(args[0], list) else [args[0]]
        return [torch.flip(x, [d0(d) for d in ds])]
    if op == "roll":
        if len(args) == 1:
            return [torch.roll(x, args[0])]
        return [torch.roll(x, args[0], dims0(args[1]))]
    if op == "tile":
        return [torch.tile(x, tuple(args[0]))]
    if op == "repeat_interleave":
        n = args[0]
        if isinstance(n, dict):
            n = torch.tensor(n["counts"], dtype=torch.int64)
        if len(args) == 1:
            return [torch.repeat_interleave(x, n)]
        return [torch.repeat_interleave(x, n, d0(args[1]))]
    raise ValueError(op)


CASES = [
    ("split", [3, 5], [2, 2]), ("split", [3, 5], [[1, 3, 1], -1]),
    ("split", [5, 2], [5, 1]), ("split", [5, 2], [7, 1]),
    ("split", [2, 3, 4], [[0, 2, 2], 3]), ("split", [0, 3], [2, 1]),
    ("chunk", [5, 2], [3, 1]), ("chunk", [6], [4, 1]), ("chunk", [2, 7], [2, -1]),
    ("chunk", [3, 2], [5, 1]), ("chunk", [0, 2], [3, 1]),
    ("unbind", [3, 2], [1]), ("unbind", [2, 3, 2], [-1]), ("unbind", [0, 2], [2]),
    ("flip", [3, 4], [1]), ("flip", [2, 3, 4], [[1, 3]]), ("flip", [2, 3, 4], [[-1, 2, 1]]),
    ("flip", [0, 3], [1]), ("flip", [4], [-1]),
    ("roll", [3, 4], [2]), ("roll", [3, 4], [-5]), ("roll", [3, 4], [[1, -2], [1, 2]]),
    ("roll", [3, 4], [-7, 2]), ("roll", [2, 0], [1, 2]), ("roll", [2, 3], [[1, 1], [2, 2]]),
    ("tile", [2, 2], [[2, 3]]), ("tile", [3], [[2, 1, 2]]), ("tile", [2, 3], [[2]]),
    ("tile", [2, 3], [[0, 2]]), ("tile", [0, 2], [[2, 2]]), ("tile", [2, 2], [[1, 1]]),
    ("repeat_interleave", [2, 3], [2]), ("repeat_interleave", [2, 3], [3, 2]),
    ("repeat_interleave", [3, 2], [{"counts": [1, 0, 2]}, 1]),
    ("repeat_interleave", [3, 2], [{"counts": [2]}, -1]),
    ("repeat_interleave", [4], [{"counts": [0, 1, 2, 3]}]),
    ("repeat_interleave", [0], [2]), ("repeat_interleave", [2, 2], [0, 1]),
]


def main():
    cases = []
    for op, shape, args in CASES:
        n = 1
        for s in shape:
            n *= s
        x = (torch.arange(n, dtype=torch.float64) + 1).reshape(shape).requires_grad_()
        ys = run(op, x, args)
        loss = x.sum() * 0
        for i, y in enumerate(ys, 1):
            w = (torch.arange(y.numel(), dtype=torch.float64) + 1).reshape(y.shape) * i
            loss = loss + (y * w).sum()
        loss.backward()
        # every value is a whole number: written as one (typed asserts it)
        cases.append({"op": op, "shape": shape, "args": args,
                      "outs": [{"shape": list(y.shape),
                                "data": luavalues.typed(luavalues.flat(y), "int64")}
                               for y in ys],
                      "grad": luavalues.typed(luavalues.flat(x.grad), "int64")})
    luavalues.write("spec/reference/joining_values.lua", cases,
                    "make_joining_reference.py", torch.__version__, lines=1)

if __name__ == "__main__":
    main()
