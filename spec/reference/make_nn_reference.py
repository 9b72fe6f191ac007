#!/usr/bin/python3
"""Reference values for spec/core/conv_spec.lua: conv2d, max_pool2d and
avg_pool2d, forward and backward, computed with PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_nn_reference.py

It writes spec/reference/nn_values.lua.  The specs only read that file;
they never need PyTorch.

Inputs come from a seeded torch.randn in float64, rounded to float32
precision, so that Ember's float32 run sees exactly the numbers the
reference used.  Expected values are computed in float64 from those inputs
and written exactly.  Some max-pool inputs are rounded to
multiples of 1/2 to make ties, and one holds NaNs, to pin down PyTorch's
choice of index (first maximum wins a tie; a NaN wins over numbers).

Ember's returned indices are 1-based: the script adds 1 to PyTorch's.
"""
import os

import torch
import torch.nn.functional as F

import luavalues

torch.manual_seed(20240607)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn_values.lua")


# Tensors are written once each into T[] and referred to by number.
TENSORS = luavalues.Shared("T")


def tensor_ref(t, index=False):
    """T[k] holding t (index: PyTorch's 0-based indices, stored 1-based)."""
    return TENSORS.add(luavalues.tensor(t + 1 if index else t))


INPUTS = {}


def randn(shape, tag="", quant=None):
    """A float64 tensor of float32-exact values; the same (shape, tag)
    gives the same tensor and one entry in T[]."""
    key = (tuple(shape), tag)
    if key not in INPUTS:
        t = torch.randn(*shape, dtype=torch.float64).float().double()
        if quant:
            t = torch.round(t * quant) / quant
        INPUTS[key] = (t, tensor_ref(t))
    return INPUTS[key]


def pair(v):
    return list(v) if isinstance(v, (list, tuple)) else [v, v]


# ---------------------------------------------------------------- conv2d

def conv_case(N, C, O, H, W, k, stride=1, padding=0, dilation=1, groups=1,
              bias=True, backward=True):
    kh, kw = pair(k)
    x, xr = randn([N, C, H, W])
    w, wr = randn([O, C // groups, kh, kw])
    b, br = randn([O]) if bias else (None, None)
    xg = x.clone().requires_grad_(True)
    wg = w.clone().requires_grad_(True)
    bg = b.clone().requires_grad_(True) if bias else None
    pad = padding if isinstance(padding, str) else pair(padding)
    y = F.conv2d(xg, wg, bg, pair(stride), pad, pair(dilation), groups)
    c = {"x": xr, "w": wr, "b": br, "stride": pair(stride), "padding": pad,
         "dilation": pair(dilation), "groups": groups, "y": tensor_ref(y)}
    if backward:
        gy, gyr = randn(list(y.shape), "gy")
        y.backward(gy)
        c.update(gy=gyr, gx=tensor_ref(xg.grad), gw=tensor_ref(wg.grad),
                 gb=tensor_ref(bg.grad) if bias else None)
    return c


def conv_cases():
    cases = []
    kernels = [1, 3, (2, 3)]
    paddings = [0, 1, 2, (1, 2)]
    i = 0
    # The grid: every kernel x stride x padding, with dilation, groups,
    # bias and batch size cycling so each value meets the others.
    for k in kernels:
        for s in (1, 2, 3):
            for p in paddings:
                d = 1 + (i // 2) % 2
                g = 1 + i % 2
                N = 3 if i % 3 == 0 else 1
                H, W = (7, 9) if i % 4 < 2 else (6, 5)
                cases.append(conv_case(N, 4, 6, H, W, k, s, p, d, g,
                                       bias=(i % 5 != 4)))
                i += 1
    # pointwise with one image (no im2col at all) and with a batch
    cases.append(conv_case(1, 4, 6, 5, 7, 1, groups=2))
    cases.append(conv_case(3, 4, 6, 5, 7, 1))
    # depthwise, unequal strides and dilations, a wide kernel
    cases.append(conv_case(2, 4, 8, 7, 9, 3, (1, 2), (2, 1), (2, 1), groups=4))
    cases.append(conv_case(1, 3, 2, 6, 8, (3, 5), (2, 3), (0, 2), (1, 2)))
    # kernel exactly the padded input
    cases.append(conv_case(2, 2, 3, 4, 5, (6, 5), 1, (1, 0), 1))
    # padding "valid" and "same" (odd totals are padded right/bottom)
    for k, d in ((3, 1), ((2, 3), 1), ((2, 4), 1), (3, 2), ((2, 2), 3)):
        cases.append(conv_case(2, 4, 6, 7, 9, k, 1, "same", d, 2,
                               backward=False))
    cases.append(conv_case(2, 4, 6, 7, 9, 3, 2, "valid", 1, 1, backward=False))
    return cases


# ---------------------------------------------------------------- pooling

def pool_case(kind, N, C, H, W, k, stride=None, padding=0, dilation=1,
              ceil_mode=False, count_include_pad=True, tag="", quant=None):
    shape = [N, C, H, W] if N else [C, H, W]
    x, xr = randn(shape, tag, quant)
    if tag == "nan":
        x = x.clone()
        x.view(-1)[[3, 4, 17]] = float("nan")
        xr = tensor_ref(x)
    xg = x.clone().requires_grad_(True)
    st = pair(stride) if stride is not None else pair(k)
    c = {"x": xr, "kernel": pair(k), "stride": st, "padding": pair(padding),
         "ceil_mode": ceil_mode}
    if kind == "max":
        y, idx = F.max_pool2d(xg, pair(k), st, pair(padding), pair(dilation),
                              ceil_mode, return_indices=True)
        c.update(dilation=pair(dilation), indices=tensor_ref(idx, index=True))
    else:
        y = F.avg_pool2d(xg, pair(k), st, pair(padding), ceil_mode,
                         count_include_pad)
        c["count_include_pad"] = count_include_pad
    gy, gyr = randn(list(y.shape), "gy")
    y.backward(gy)
    c.update(y=tensor_ref(y), gy=gyr, gx=tensor_ref(xg.grad))
    return c


def max_cases():
    cases = []
    i = 0
    for k in (2, 3, (2, 3)):
        for s in (None, 1, 2):
            for p in (0, 1):
                for ceil in (False, True):
                    d = 2 if i % 3 == 2 else 1
                    N = 2 if i % 2 else 0     # 0: unbatched [C,H,W]
                    cases.append(pool_case("max", N, 3, 7, 8, k, s, p, d, ceil))
                    i += 1
    # dilation with unequal sizes, padding on one side only
    cases.append(pool_case("max", 1, 2, 9, 7, (3, 2), (2, 1), (1, 0), (2, 3), True))
    # ties (values are multiples of 1/2) and NaNs
    cases.append(pool_case("max", 2, 2, 6, 6, 3, 1, 1, 1, False, tag="ties", quant=2))
    cases.append(pool_case("max", 1, 2, 5, 6, 2, 1, 0, 1, False, tag="nan"))
    # overlapping windows: backward adds where windows share a maximum
    cases.append(pool_case("max", 1, 1, 5, 5, 3, 1, 1, 1, False, tag="ties", quant=1))
    return cases


def avg_cases():
    cases = []
    i = 0
    for k in (2, 3, (2, 3)):
        for s in (None, 1, 2):
            for p in (0, 1):
                for ceil in (False, True):
                    cip = i % 2 == 0
                    N = 2 if i % 3 else 0
                    cases.append(pool_case("avg", N, 3, 7, 8, k, s, p, 1, ceil, cip))
                    i += 1
    # a ceil_mode window that reaches past the padding: the divisor stops
    # at the padding (count_include_pad) or at the input
    for cip in (True, False):
        cases.append(pool_case("avg", 1, 2, 6, 6, 3, 2, 1, 1, True, cip))
        cases.append(pool_case("avg", 1, 2, 5, 5, (4, 2), (3, 3), (2, 1), 1, True, cip))
    return cases


def main():
    conv = conv_cases()
    mx = max_cases()
    avg = avg_cases()
    luavalues.write(OUT, {"conv2d": conv, "max_pool2d": mx, "avg_pool2d": avg},
                    "make_nn_reference.py", torch.__version__,
                    notes=["Tensors are {shape, data (flat, row-major)}; indices are 1-based."],
                    shared=[TENSORS], lines=2)
    print("%s: %d conv2d, %d max_pool2d, %d avg_pool2d cases, %d bytes" % (
        OUT, len(conv), len(mx), len(avg), os.path.getsize(OUT)))


main()
