#!/usr/bin/python3
"""Reference values for spec/core/tri_spec.lua (tril, triu), from PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_tri_reference.py

It writes spec/reference/tri_values.lua; the spec only reads that file.

Inputs are deterministic: element i (row-major) of an input with phase p is
sin(i*0.37 + p) * 3, rounded to the dtype (integers: rounded; uint8:
absolute value; bool: > 0).  A case with transpose=true stores its input
with the last two dims swapped and swaps them back (a non-contiguous view)
before the op, in PyTorch and in the spec alike.  tril and triu only copy
or zero elements, so every expectation is exact in every dtype.

Gradients (float dtypes): the loss is sum(op(x) * w), with w built as the
inputs are (phase 1.5, stored as w), so x's gradient is op(w); stored as
grad.
"""

import torch

import luavalues
from refinputs import make, swap_last


CASES = []


def case(op, shape, dtype, k=None, transpose=False):
    stored = swap_last(shape) if transpose else list(shape)
    base = make(stored, dtype, 0.7)
    x = base.transpose(-1, -2) if transpose else base
    fn = getattr(torch, op)
    out = fn(x) if k is None else fn(x, k)
    c = {"op": op, "shape": stored, "dtype": dtype, "k": k,
         "transpose": transpose, "data": base.flatten().tolist(),
         "out_shape": list(out.shape), "out": out.flatten().tolist()}
    if dtype in ("float32", "float64"):
        xg = x.detach().clone().requires_grad_(True)
        w = make(list(shape), dtype, 1.5)
        y = fn(xg) if k is None else fn(xg, k)
        (y * w).sum().backward()
        c["w"] = w.flatten().tolist()
        c["grad"] = xg.grad.flatten().tolist()
    CASES.append(c)


for op in ("tril", "triu"):
    for k in (None, -4, -1, 0, 1, 2, 5, 2 ** 40, -(2 ** 40)):
        case(op, [3, 4], "float32", k)
    for k in (None, -2, 1):
        case(op, [5, 3], "float64", k)
        case(op, [2, 3, 4], "float32", k)          # batched
        case(op, [2, 1, 3, 5], "float64", k)       # batched, 4-D
        case(op, [4, 3], "float32", k, transpose=True)
        case(op, [2, 3, 5], "float64", k, transpose=True)
    for dtype in ("int32", "int64", "uint8", "bool"):
        case(op, [4, 4], dtype)
        case(op, [3, 5], dtype, -1)
        case(op, [2, 4, 3], dtype, 1, transpose=True)
    for shape in ([0, 3], [3, 0], [2, 0, 4], [0, 0], [1, 1]):
        case(op, shape, "float32", 1)
        case(op, shape, "bool")


luavalues.write("spec/reference/tri_values.lua", CASES, "make_tri_reference.py",
                torch.__version__, lines=1)
print("%d cases" % len(CASES))
