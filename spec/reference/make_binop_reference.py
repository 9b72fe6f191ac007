#!/usr/bin/python3
"""Reference values for spec/core/binop_spec.lua (remainder, fmod, atan2,
hypot), from PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_binop_reference.py

It writes spec/reference/binop_values.lua; the spec only reads that file.

Inputs are deterministic: element i (row-major) of an input with phase p is
sin(i*0.37 + p) * 5, rounded to the dtype (integers: rounded, a 0 divisor
replaced by 3).  a has shape a_shape, b has b_shape (broadcast).  The
result's dtype is PyTorch's (stored as out_dtype).

Gradients (float dtypes): the loss is sum(op(a, b) * w), w built as the
inputs are (phase 1.5, the result's shape); stored as grad_a and grad_b.
"""
import math

import torch

import luavalues

DTYPES = {
    "float32": torch.float32, "float64": torch.float64, "int32": torch.int32,
    "int64": torch.int64,
}
NAMES = {v: k for k, v in DTYPES.items()}


def make(shape, dtype, phase, divisor=False):
    n = math.prod(shape)
    raw = [math.sin(i * 0.37 + phase) * 5 for i in range(n)]
    if dtype in ("float32", "float64"):
        vals = raw
    else:
        vals = [int(round(x)) for x in raw]
        if divisor:
            vals = [3 if x == 0 else x for x in vals]
    return torch.tensor(vals, dtype=DTYPES[dtype]).reshape(shape)


CASES = []


def case(op, dtype, a_shape, b_shape):
    a = make(a_shape, dtype, 0.7)
    b = make(b_shape, dtype, 2.1, divisor=True)
    fn = getattr(torch, op)
    out = fn(a, b)
    odt = NAMES[out.dtype]
    c = {"op": op, "dtype": dtype, "a_shape": a_shape, "b_shape": b_shape,
         "a": a.flatten().tolist(), "b": b.flatten().tolist(),
         "out_dtype": odt, "out_shape": list(out.shape),
         "out": out.flatten().tolist()}
    if dtype in ("float32", "float64"):
        ag = a.clone().requires_grad_(True)
        bg = b.clone().requires_grad_(True)
        w = make(list(out.shape), dtype, 1.5)
        (fn(ag, bg) * w).sum().backward()
        c["w"] = w.flatten().tolist()
        c["grad_a"] = ag.grad.flatten().tolist()
        c["grad_b"] = bg.grad.flatten().tolist()
    CASES.append(c)


for op in ("remainder", "fmod", "atan2", "hypot"):
    for dt in ("float32", "float64"):
        case(op, dt, [3, 4], [4])
        case(op, dt, [2, 3], [2, 1])
    if op in ("remainder", "fmod", "atan2"):
        for dt in ("int32", "int64"):
            case(op, dt, [3, 4], [4])


luavalues.write("spec/reference/binop_values.lua", CASES, "make_binop_reference.py",
                torch.__version__, lines=1)
