#!/usr/bin/python3
"""Reference values for spec/core/slicing_spec.lua (index_copy_,
index_fill_, and slicing reads and writes t[key], t[key] = v), from PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_slicing_reference.py

It writes spec/reference/slicing_values.lua; the spec only reads that file.

Inputs are deterministic: element i (row-major) of an input with phase p is
sin(i*0.37 + p) * 3, rounded to the dtype (integers: rounded; uint8:
absolute value; bool: > 0).  transpose=true stores the input with its last
two dims swapped and swaps them back (a non-contiguous view).  Dims and
indices are 1-based as in Ember.  A key is a list of entries, each
{"all"}, {"range", first, last, step} (1-based, inclusive, negative from
the end), {"at", n} or {"index", {i, ...}}.  Gradients (float64 cases): the
loss is sum(out * w), w built as the output (phase 1.5); writes go into
x * 1 (a non-leaf) and the gradients of x and of the source are stored.
"""
import math

import torch

import luavalues
from luavalues import flat

DTYPES = {
    "float32": torch.float32, "float64": torch.float64, "int32": torch.int32,
    "int64": torch.int64, "uint8": torch.uint8, "bool": torch.bool,
}
FLOATS = ("float32", "float64")


def make(shape, dtype, phase, transpose=False):
    n = math.prod(shape)
    raw = [math.sin(i * 0.37 + phase) * 3 for i in range(n)]
    if dtype == "bool":
        vals = [x > 0 for x in raw]
    elif dtype in FLOATS:
        vals = raw
    elif dtype == "uint8":
        vals = [abs(round(x)) for x in raw]
    else:
        vals = [round(x) for x in raw]
    stored = list(shape)
    if transpose:
        stored[-1], stored[-2] = stored[-2], stored[-1]
    t = torch.tensor(vals, dtype=DTYPES[dtype]).reshape(stored)
    if transpose:
        t = t.transpose(-1, -2)
    return t, vals


def py_key(key, shape):
    out = []
    for d, e in enumerate(key):
        size = shape[d]
        if e[0] == "all":
            out.append(slice(None))
        elif e[0] == "range":
            a, b, step = e[1], e[2], e[3]
            start = a - 1 if a > 0 else size + a
            stop = b if b > 0 else size + b + 1
            out.append(slice(start, stop, step))
        elif e[0] == "at":
            out.append(e[1] - 1 if e[1] > 0 else e[1])
        else:
            out.append(torch.tensor([i - 1 for i in e[1]], dtype=torch.long))
    return tuple(out)


CASES = []


def index_case(op, shape, dim, index, dtype, transpose=False, value=None):
    x, xv = make(shape, dtype, 0.3, transpose)
    idx = torch.tensor([i - 1 for i in index], dtype=torch.long)
    pd = dim - 1 if dim > 0 else dim
    sshape = list(shape)
    sshape[pd] = len(index)
    case = {"op": op, "shape": shape, "dim": dim, "index": index, "dtype": dtype,
            "transpose": transpose, "x": xv}
    grad = dtype == "float64"
    xx = x.clone().requires_grad_(grad)
    base = xx * 1 if grad else xx.clone()
    if op == "index_copy":
        src, sv = make(sshape, dtype, 0.9)
        src = src.clone().requires_grad_(grad)
        out = base.index_copy(pd, idx, src)
        case.update(src=sv, src_shape=sshape)
    else:
        v = torch.tensor(value, dtype=torch.float64, requires_grad=grad) if grad else value
        out = base.index_fill(pd, idx, v)
        case["value"] = value
    case["out"] = flat(out)
    if grad:
        w, _ = make(list(out.shape), dtype, 1.5)
        (out * w).sum().backward()
        g = src.grad if op == "index_copy" else v.grad
        case.update(grad_x=flat(xx.grad), grad_src=flat(g))
    CASES.append(case)


def read_case(shape, key, dtype, transpose=False):
    x, xv = make(shape, dtype, 0.3, transpose)
    grad = dtype == "float64"
    xx = x.clone().requires_grad_(grad)
    out = xx[py_key(key, shape)]
    case = {"op": "read", "shape": shape, "key": key, "dtype": dtype,
            "transpose": transpose, "x": xv, "out_shape": list(out.shape), "out": flat(out)}
    if grad:
        w, _ = make(list(out.shape), dtype, 1.5)
        (out * w).sum().backward()
        case["grad_x"] = flat(xx.grad)
    CASES.append(case)


def write_case(shape, key, dtype, src_shape=None, value=None, transpose=False):
    x, xv = make(shape, dtype, 0.3, transpose)
    grad = dtype == "float64"
    xx = x.clone().requires_grad_(grad)
    base = xx * 1 if grad else xx.clone()
    case = {"op": "write", "shape": shape, "key": key, "dtype": dtype,
            "transpose": transpose, "x": xv}
    src = None
    if src_shape is not None:
        s, sv = make(src_shape, dtype, 0.9)
        src = s.clone().requires_grad_(grad)
        base[py_key(key, shape)] = src
        case.update(src=sv, src_shape=src_shape)
    else:
        base[py_key(key, shape)] = value
        case["value"] = value
    case["out"] = flat(base)
    if grad:
        w, _ = make(shape, dtype, 1.5)
        (base * w).sum().backward()
        case["grad_x"] = flat(xx.grad)
        if src is not None:
            case["grad_src"] = flat(src.grad)
    CASES.append(case)


for dt in DTYPES:
    index_case("index_copy", [4, 3], 1, [3, 1], dt)
    index_case("index_fill", [3, 4], 2, [4, 2], dt, value=1)
index_case("index_copy", [3, 4], 2, [2, 4, 1], "float64", transpose=True)
index_case("index_copy", [2, 3, 4], 3, [4, 2], "float64")
index_case("index_copy", [3, 2], 1, [], "float64")
index_case("index_fill", [3, 4], 1, [1, 3, 1], "float64", value=-2.5)
index_case("index_fill", [2, 3, 4], -1, [4], "float32", transpose=True, value=0.5)

KEYS = [
    [["all"], ["range", 2, 3, 1]],
    [["range", 1, -2, 1]],
    [["all"], ["range", 1, 4, 2]],
    [["range", -3, -1, 2], ["at", -1]],
    [["at", 2]],
    [["at", 2], ["range", 2, 2, 1]],
    [["index", [3, 1, 3]]],
    [["all"], ["index", [4, 1]]],
    [["range", 2, 3, 1], ["index", [2, 2]]],
    [["at", 1], ["index", [4, 1]]],
    [["range", 2, 1, 1]],
]
for key in KEYS:
    read_case([3, 4], key, "float64")
read_case([3, 4], [["all"], ["range", 1, 4, 3]], "float32", transpose=True)
read_case([2, 3, 4], [["all"], ["range", 1, 3, 2], ["at", -2]], "float64", transpose=True)
for dt in DTYPES:
    read_case([3, 4], [["range", 1, 3, 2], ["all"]], dt)

write_case([3, 4], [["all"], ["range", 1, 2, 1]], "float64", value=0)
write_case([3, 4], [["all"], ["range", 1, 2, 1]], "float64", src_shape=[2])
write_case([3, 4], [["range", 2, 3, 1]], "float64", src_shape=[2, 4])
write_case([3, 4], [["all"], ["range", 1, 4, 2]], "float64", src_shape=[3, 1])
write_case([3, 4], [["at", -1], ["range", 2, 4, 2]], "float64", src_shape=[2])
write_case([3, 4], [["index", [3, 1]]], "float64", src_shape=[4])
write_case([3, 4], [["all"], ["index", [4, 2]]], "float64", value=7.5)
write_case([3, 4], [["at", 2], ["index", [4, 2]]], "float64", src_shape=[2])
write_case([3, 4], [["all"], ["range", 2, 3, 1]], "float64", src_shape=[3, 2], transpose=True)
write_case([2, 3, 4], [["range", 1, 2, 1], ["at", 3], ["range", 1, 4, 3]], "float64", src_shape=[2, 2])
for dt in DTYPES:
    write_case([3, 4], [["all"], ["range", 2, 4, 2]], dt, src_shape=[3, 2])

luavalues.write("spec/reference/slicing_values.lua", CASES, "make_slicing_reference.py",
                torch.__version__, lines=1)
