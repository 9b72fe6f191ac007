#!/usr/bin/python3
"""Reference values for spec/core/sort_spec.lua (sort, argsort, topk,
kthvalue, median), from PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_sort_reference.py

It writes spec/reference/sort_values.lua; the spec only reads that file.

Inputs are deterministic: element i (row-major) of an input is
sin(i*0.37 + 0.7) * 3 rounded to the dtype (integers: rounded; uint8:
absolute value; bool: > 0).  ties=true rounds floats to integers (many
equal values), nan=true makes every fifth element NaN.  transpose=true
stores the input with its last two dims swapped and swaps them back (a
non-contiguous view).  dim and k are 1-based as in Ember.  sort runs with
stable=True, so its indices are exact; for topk, kthvalue and median the
indices are stored (exact=true) only where no two compared values tie --
among ties (NaNs included) PyTorch's choice is unspecified, and the spec checks that
Ember's is a valid one.  Gradients (float inputs, no ties): the loss is
sum(values * w), w built as the inputs with phase 1.5.
"""
import sys

import torch

sys.path.insert(0, "spec/reference")
import luavalues  # noqa: E402
from refinputs import FLOATS, make, swap_last  # noqa: E402


def run(op, x, dim, k, opt):
    d = dim - 1 if dim > 0 else dim
    if op == "sort":
        return torch.sort(x, dim=d, descending=opt.get("descending", False), stable=True)
    if op == "topk":
        return torch.topk(x, k, d, largest=opt.get("largest", True))
    if op == "kthvalue":
        return torch.kthvalue(x, k, d, keepdim=opt.get("keepdim", False))
    if op == "median" and dim == 0:
        return torch.median(x), None
    return torch.median(x, d, keepdim=opt.get("keepdim", False))


CASES = []


def case(op, shape, dtype, dim, k=0, opt=None, transpose=False, ties=False, nan=False):
    opt = opt or {}
    stored = swap_last(shape) if transpose else list(shape)
    base = make(stored, dtype, 0.7, ties=ties, nan=nan)
    x = base.transpose(-1, -2) if transpose else base
    out, idx = run(op, x, dim, k, opt)
    c = {"op": op, "shape": stored, "dtype": dtype, "dim": dim, "k": k, "opt": opt,
         "transpose": transpose, "data": base.flatten().tolist(),
         "out_shape": list(out.shape), "out": out.flatten().tolist()}
    distinct = not ties and not nan and dtype in FLOATS
    if idx is not None:
        c["idx"] = [int(v) + 1 for v in idx.flatten().tolist()]
        c["exact"] = op == "sort" or distinct
    if dtype in FLOATS and (distinct or (op == "median" and dim == 0)):
        xg = x.detach().clone().requires_grad_(True)
        w = make(list(out.shape), dtype, 1.5)
        y, _ = run(op, xg, dim, k, opt)
        (y * w).sum().backward()
        c["w"] = w.flatten().tolist()
        c["grad"] = xg.grad.flatten().tolist()
    CASES.append(c)


ALL = ("float32", "float64", "int32", "int64", "uint8", "bool")
for dt in ALL:
    for desc in (False, True):
        o = {"descending": desc}
        case("sort", [7], dt, 1, opt=o)
        case("sort", [3, 5], dt, 2, opt=o, ties=True)
        case("sort", [3, 5], dt, 1, opt=o)
        case("sort", [2, 3, 4], dt, 2, opt=o, transpose=True)
    case("sort", [60], dt, 1, ties=True)            # longer than insertion sort's lines
    case("sort", [0, 3], dt, 2)
    case("sort", [], dt, 1)
for dt in FLOATS:
    case("sort", [3, 7], dt, 2, nan=True)
    case("sort", [3, 7], dt, 2, opt={"descending": True}, nan=True)
    case("sort", [200], dt, 1)
    case("sort", [2, 100], dt, -1, opt={"descending": True}, nan=True)
for dt in ALL[:5]:
    case("topk", [9], dt, 1, k=3)
    case("topk", [4, 6], dt, 2, k=2, opt={"largest": False})
    case("topk", [4, 6], dt, 1, k=4, ties=True)
    case("topk", [3, 5], dt, 2, k=2, transpose=True)
    case("kthvalue", [9], dt, 1, k=4)
    case("kthvalue", [4, 6], dt, 2, k=6, opt={"keepdim": True})
    case("kthvalue", [3, 5], dt, 1, k=2, transpose=True, ties=True)
    case("median", [9], dt, 1)
    case("median", [4, 6], dt, 2)
    case("median", [4, 6], dt, 1, opt={"keepdim": True}, ties=True)
    case("median", [3, 5], dt, 2, transpose=True)
    case("median", [4, 6], dt, 0)
    case("median", [4, 5], dt, 0, ties=True)
    case("topk", [0, 4], dt, 2, k=0)
    case("topk", [], dt, 1, k=1)
    case("kthvalue", [], dt, 1, k=1)
    case("median", [], dt, 1)
for dt in FLOATS:
    case("topk", [1100], dt, 1, k=10)                # the selection path
    case("topk", [2, 1100], dt, 2, k=5, opt={"largest": False})
    case("topk", [3, 7], dt, 2, k=3, nan=True)
    case("topk", [3, 7], dt, 2, k=3, opt={"largest": False}, nan=True)
    case("kthvalue", [3, 7], dt, 2, k=6, nan=True)
    case("median", [3, 7], dt, 2, nan=True)
    case("median", [3, 7], dt, 0, nan=True)
    case("median", [4, 6], dt, 2, k=0, ties=True)


def lua_case(c):
    d = c["dtype"]
    od = "int64" if c["op"] == "argsort" else d
    f = dict(op=c["op"], shape=c["shape"], dtype=d, dim=c["dim"], k=c["k"],
             transpose=bool(c["transpose"]),
             opt={a: bool(b) for a, b in c["opt"].items()},
             data=luavalues.typed(c["data"], d), out_shape=c["out_shape"],
             out=luavalues.typed(c["out"], od))
    if "idx" in c:
        f["idx"] = luavalues.typed(c["idx"], "int64")
        f["exact"] = bool(c["exact"])
    if "grad" in c:
        f["w"] = luavalues.typed(c["w"], d)
        f["grad"] = luavalues.typed(c["grad"], d)
    return f


luavalues.write("spec/reference/sort_values.lua", [lua_case(c) for c in CASES],
                "make_sort_reference.py", torch.__version__, lines=1)
print(len(CASES), "cases")
