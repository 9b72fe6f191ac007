#!/usr/bin/python3
"""Reference values for spec/core/scan_spec.lua (cumsum, cumprod, cummax,
logcumsumexp), from PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_scan_reference.py

It writes spec/reference/scan_values.lua; the spec only reads that file.

Inputs are deterministic: element i (row-major) of an input with phase p is
sin(i*0.37 + p) * 3, rounded to the dtype (integers: rounded; uint8:
absolute value; bool: > 0); a case with zeros=true sets every third element
to 0 (cumprod's gradient through zeros), one with ties=true rounds floats
to integers (cummax's choice among equal values).  A case with
transpose=true stores its input with the last two dims swapped and swaps
them back (a non-contiguous view) before the op.  dim is 1-based as in
Ember.  Gradients (float results): the loss is sum(op(x) * w), w built as
the inputs (phase 1.5), stored as grad; cummax uses its values.
"""
import math

import torch

import luavalues
from refinputs import DTYPES, FLOATS, make, swap_last


CASES = []


def run(op, x, dim, opt):
    d = dim - 1 if dim > 0 else dim
    if op == "cummax":
        v, i = torch.cummax(x, d)
        return v, i
    if opt:
        return getattr(torch, op)(x, d, dtype=DTYPES[opt]), None
    return getattr(torch, op)(x, d), None


def case(op, shape, dtype, dim, transpose=False, zeros=False, ties=False, opt=None):
    stored = swap_last(shape) if transpose else list(shape)
    base = make(stored, dtype, 0.7, zeros=zeros, ties=ties)
    x = base.transpose(-1, -2) if transpose else base
    out, idx = run(op, x, dim, opt)
    od = str(out.dtype).replace("torch.", "")
    c = {"op": op, "shape": stored, "dtype": dtype, "dim": dim, "transpose": transpose,
         "opt": opt, "data": base.flatten().tolist(), "out_dtype": od,
         "out_shape": list(out.shape), "out": out.flatten().tolist()}
    if idx is not None:
        c["idx"] = [int(v) + 1 for v in idx.flatten().tolist()]
    if od in FLOATS and dtype in FLOATS:
        xg = x.detach().clone().requires_grad_(True)
        w = make(list(shape), od, 1.5)
        y, _ = run(op, xg, dim, opt)
        (y * w).sum().backward()
        c["w"] = w.flatten().tolist()
        c["grad"] = xg.grad.flatten().tolist()
    CASES.append(c)


for op in ("cumsum", "cumprod", "cummax", "logcumsumexp"):
    for dt in FLOATS:
        case(op, [7], dt, 1)
        case(op, [3, 4], dt, 1)
        case(op, [3, 4], dt, 2)
        case(op, [3, 4], dt, -1)
        case(op, [2, 3, 4], dt, 2)
        case(op, [3, 5], dt, 2, transpose=True)
        case(op, [2, 4, 3], dt, 2, transpose=True)
        case(op, [], dt, 1)
        case(op, [0, 3], dt, 1)
        case(op, [2, 0], dt, 2)
    if op != "logcumsumexp":
        for dt in ("int32", "int64", "uint8", "bool"):
            case(op, [3, 4], dt, 2)
            case(op, [2, 3, 4], dt, 1, transpose=True)
    case(op, [4, 6], "float64", 2, zeros=True)
    case(op, [6, 4], "float32", 1, zeros=True)
    case(op, [5, 6], "float64", 2, ties=True)
    case(op, [3, 8], "int64", -1, ties=True) if op != "logcumsumexp" else None
for op in ("cumsum", "cumprod"):
    case(op, [3, 4], "float32", 2, opt="float64")
    case(op, [3, 4], "int32", 2, opt="float32")
    case(op, [3, 4], "int64", 1, opt="int32")
    case(op, [3, 4], "bool", 2, opt="float64")
    case(op, [3, 4], "float64", 2, opt="int64")
# one zero only, a zero first and last, two zeros in a row
for data in ([2.0, 0.0, 3.0, 4.0], [0.0, 2.0, 3.0], [2.0, 3.0, 0.0], [1.5, 0.0, 0.0, 2.0]):
    x = torch.tensor(data, dtype=torch.float64, requires_grad=True)
    y = torch.cumprod(x, 0)
    w = torch.arange(1, len(data) + 1, dtype=torch.float64)
    (y * w).sum().backward()
    CASES.append({"op": "cumprod", "shape": [len(data)], "dtype": "float64", "dim": 1,
                  "transpose": False, "opt": None, "data": data, "out_dtype": "float64",
                  "out_shape": [len(data)], "out": y.detach().tolist(),
                  "w": w.tolist(), "grad": x.grad.tolist()})
# infinities and NaN
for op, data in (("logcumsumexp", [-math.inf, -math.inf, 1.0, math.inf, 2.0]),
                 ("logcumsumexp", [1000.0, 1000.0, -1000.0]),
                 ("cummax", [1.0, math.nan, 3.0, math.nan, 0.0]),
                 ("cumsum", [1.0, math.inf, -math.inf, 2.0])):
    x = torch.tensor(data, dtype=torch.float64)
    out, idx = run(op, x, 1, None)
    c = {"op": op, "shape": [len(data)], "dtype": "float64", "dim": 1, "transpose": False,
         "opt": None, "data": data, "out_dtype": "float64", "out_shape": [len(data)],
         "out": out.tolist()}
    if idx is not None:
        c["idx"] = [int(v) + 1 for v in idx.tolist()]
    CASES.append(c)


luavalues.write("spec/reference/scan_values.lua", CASES, "make_scan_reference.py",
                torch.__version__, lines=1)
print(len(CASES), "cases")
