"""The deterministic inputs the reference generators share
(spec/reference/make_*_reference.py): element i (row-major) of an input
with phase p is sin(i*0.37 + p) * 3, made into the dtype's values.

    import refinputs
    x = refinputs.make([3, 4], "float32", 0.7, ties=True)
"""
import math

import torch

DTYPES = {
    "float32": torch.float32, "float64": torch.float64, "int32": torch.int32,
    "int64": torch.int64, "uint8": torch.uint8, "bool": torch.bool,
}
FLOATS = ("float32", "float64")


def make(shape, dtype, phase, *, zeros=False, ties=False, nan=False):
    """The input of shape and dtype (a name of DTYPES) with phase.  zeros:
    every third element (i % 3 == 1) is 0; ties: floats rounded to
    integers; nan: every fifth (i % 5 == 2) is NaN (floats only).
    Integers are the rounded values (uint8: their absolute value); bool is
    value > 0."""
    n = math.prod(shape)
    raw = [math.sin(i * 0.37 + phase) * 3 for i in range(n)]
    if zeros:
        raw = [0.0 if i % 3 == 1 else x for i, x in enumerate(raw)]
    if ties:
        raw = [float(round(x)) for x in raw]
    if nan:
        raw = [math.nan if i % 5 == 2 else x for i, x in enumerate(raw)]
    if dtype == "bool":
        vals = [x > 0 for x in raw]
    elif dtype in FLOATS:
        vals = raw
    else:
        vals = [int(round(x)) for x in raw]
        if dtype == "uint8":
            vals = [abs(x) for x in vals]
    return torch.tensor(vals, dtype=DTYPES[dtype]).reshape(shape)


def swap_last(shape):
    """shape with its last two sizes swapped (a list)."""
    s = list(shape)
    s[-1], s[-2] = s[-2], s[-1]
    return s
