#!/usr/bin/python3
"""Reference values for spec/core/logic_spec.lua (issue 17's logic group:
any, all, isnan, isinf, isfinite, logical_and/or/xor/not), from PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_logic_reference.py

It writes spec/reference/logic_values.lua; the spec only reads that file.
Every result is a bool tensor, so the values are exact.  Inputs hold the
values the ops tell apart: zeros (and -0.0), NaN, +-inf, negative numbers,
for every dtype Ember has; some are read through a transpose (a
non-contiguous view), some are empty or 0-d.  One difference from
PyTorch, kept on purpose: torch.any/all of a uint8 tensor give uint8 (a
legacy rule), Ember gives bool like every other dtype; the values agree.  Dims are Ember's (1-based);
the script converts when it calls PyTorch.
"""
import os

import torch

import luavalues

DTYPES = {
    "float32": torch.float32, "float64": torch.float64, "int32": torch.int32,
    "int64": torch.int64, "uint8": torch.uint8, "bool": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}
NAN, INF = float("nan"), float("inf")


class Input:
    """A tensor given by its values (row-major over `shape`), optionally
    read through transpose(a, b) (Ember dims)."""
    def __init__(self, shape, dtype, values, transpose=None):
        self.shape, self.dtype, self.transpose = list(shape), dtype, transpose
        t = torch.tensor(values, dtype=DTYPES[dtype]).reshape(shape)
        self.data = t.flatten().tolist()
        self.base = t

    def torch(self):
        t = self.base
        if self.transpose:
            t = t.transpose(self.transpose[0] - 1, self.transpose[1] - 1)
        return t

    def value(self):
        """What the data file holds for this input."""
        return {"shape": self.shape, "dtype": self.dtype, "data": self.data,
                "transpose": list(self.transpose) if self.transpose else None}


FLOAT_VALS = [0.0, 1.5, NAN, -INF, -0.0, INF, -2.0, 0.0, 3.25, NAN, 0.0, 0.0]
INT_VALS = [0, 3, -1, 0, 0, 7, 0, 0, -5, 2, 0, 0]
UINT8_VALS = [0, 3, 255, 0, 0, 7, 0, 0, 5, 2, 0, 0]
BOOL_VALS = [False, True, True, False, False, True, False, False, True, True,
             False, False]


INPUTS = {}


def inputs_of(dtype):
    if dtype not in INPUTS:
        INPUTS[dtype] = make_inputs(dtype)
    return INPUTS[dtype]


def make_inputs(dtype):
    vals = {"float32": FLOAT_VALS, "float64": FLOAT_VALS, "int32": INT_VALS,
            "int64": INT_VALS, "uint8": UINT8_VALS, "bool": BOOL_VALS}[dtype]
    return [
        ("%s[3,4]" % dtype, Input([3, 4], dtype, vals)),
        ("%s[4,3].T" % dtype, Input([4, 3], dtype, vals, transpose=(1, 2))),
        ("%s[2,2,3]" % dtype, Input([2, 2, 3], dtype, vals)),
        ("%s[0,3]" % dtype, Input([0, 3], dtype, [])),
        ("%s[]" % dtype, Input([], dtype, vals[1:2])),
        ("%s[]zero" % dtype, Input([], dtype, vals[0:1])),
    ]


def tdim(d):
    return d - 1 if d > 0 else d


def run(op, ts, args):
    if op in ("any", "all"):
        f = getattr(torch, op)
        if "dim" not in args:
            return f(ts[0])
        return f(ts[0], tdim(args["dim"]), keepdim=args.get("keepdim", False))
    if op in ("isnan", "isinf", "isfinite", "logical_not"):
        return getattr(torch, op)(ts[0])
    return getattr(torch, op)(ts[0], ts[1])


CASES = []


def case(name, op, inputs, args=None):
    args = args or {}
    out = run(op, [x.torch() for x in inputs], args)
    if op in ("any", "all") and out.dtype == torch.uint8:
        out = out.bool()    # PyTorch keeps uint8 here (legacy); Ember gives bool
    assert out.dtype == torch.bool, (name, out.dtype)
    CASES.append((name, op, inputs, args, out))


def main():
    for dtype in DTYPES:
        for iname, x in inputs_of(dtype):
            for op in ("any", "all"):
                case("%s %s" % (op, iname), op, [x])
                dims = range(1, len(x.shape) + 1) if x.shape else [1]
                for d in dims:
                    case("%s(%d) %s" % (op, d, iname), op, [x], {"dim": d})
                    case("%s(%d, keepdim) %s" % (op, -d, iname), op, [x],
                         {"dim": -d, "keepdim": True})
            for op in ("isnan", "isinf", "isfinite", "logical_not"):
                case("%s %s" % (op, iname), op, [x])
    # binary: every pair of dtypes, broadcast [3,4] with [4] and [3,1],
    # non-contiguous with contiguous, empty with empty, 0-d with [3,4]
    for da in DTYPES:
        for db in DTYPES:
            a = dict(inputs_of(da))
            b = dict(inputs_of(db))
            vb = {"float32": FLOAT_VALS, "float64": FLOAT_VALS,
                  "int32": INT_VALS, "int64": INT_VALS, "uint8": UINT8_VALS,
                  "bool": BOOL_VALS}[db]
            row = Input([4], db, vb[2:6])
            col = Input([3, 1], db, vb[5:8])
            for op in ("logical_and", "logical_or", "logical_xor"):
                p = "%s %s, " % (op, da)
                case(p + "%s [3,4] [3,4].T" % db, op,
                     [a["%s[3,4]" % da], b["%s[4,3].T" % db]])
                case(p + "%s [3,4] [4]" % db, op, [a["%s[3,4]" % da], row])
                case(p + "%s [4,3].T [3,1]" % db, op, [a["%s[4,3].T" % da], col])
                case(p + "%s [0,3] [0,3]" % db, op, [a["%s[0,3]" % da], b["%s[0,3]" % db]])
                case(p + "%s [] [3,4]" % db, op, [a["%s[]zero" % da], b["%s[3,4]" % db]])

    names = set()
    inputs = luavalues.Shared("I")    # an input is written once, as I[k]
    cases = []
    for name, op, xs, args, res in CASES:
        assert name not in names, "duplicate case name " + name
        names.add(name)
        cases.append({"name": name, "op": op,
                      "inputs": [inputs.add(x.value(), key=id(x)) for x in xs],
                      "args": args or None,
                      "expected": {"shape": list(res.shape),
                                   "data": luavalues.flat(res)}})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "logic_values.lua")
    luavalues.write(path, cases, "make_logic_reference.py", torch.__version__,
                    notes=["Dims follow Ember (1-based).  Every expected result is bool."],
                    shared=[inputs], lines=1)
    print("wrote %s: %d cases, %d inputs, %d bytes"
          % (path, len(CASES), len(inputs.values), os.path.getsize(path)))


if __name__ == "__main__":
    main()
