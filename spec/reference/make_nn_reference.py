#!/usr/bin/python3
"""Reference values for spec/core/conv_spec.lua: conv2d, max_pool2d and
avg_pool2d, forward and backward, computed with PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    /usr/bin/python3 spec/reference/make_nn_reference.py

It writes spec/reference/nn_values.lua.  The specs only read that file;
they never need PyTorch.

Inputs come from a seeded torch.randn in float64, rounded to float32
precision, so that Ember's float32 run sees exactly the numbers the
reference used.  Expected values are computed in float64 from those inputs
and written with %.17g (exact).  Some max-pool inputs are rounded to
multiples of 1/2 to make ties, and one holds NaNs, to pin down PyTorch's
choice of index (first maximum wins a tie; a NaN wins over numbers).

Ember's returned indices are 1-based: the script adds 1 to PyTorch's.
"""
import math
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20240607)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn_values.lua")


def fmt(v):
    v = float(v)
    if math.isnan(v):
        return "0/0"
    if math.isinf(v):
        return "1/0" if v > 0 else "-1/0"
    s = "%.17g" % v
    if float(s) == v and ("%.9g" % v) != s and float("%.9g" % v) == v:
        s = "%.9g" % v           # shorter, still exact (float32 values)
    return s


def lua(v):
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, (list, tuple)):
        return "{" + ",".join(lua(x) for x in v) + "}"
    raise TypeError(v)


# Tensors are written once each into T[] and referred to by number.
TENSORS = []


def tensor_ref(t, index=False):
    data = t.detach().flatten().tolist()
    body = ",".join(str(int(x) + 1) if index else fmt(x) for x in data)
    TENSORS.append("{shape=%s,data={%s}}" % (lua(list(t.shape)), body))
    return "T[%d]" % len(TENSORS)


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
    b, br = randn([O]) if bias else (None, "nil")
    xg = x.clone().requires_grad_(True)
    wg = w.clone().requires_grad_(True)
    bg = b.clone().requires_grad_(True) if bias else None
    pad = padding if isinstance(padding, str) else pair(padding)
    y = F.conv2d(xg, wg, bg, pair(stride), pad, pair(dilation), groups)
    fields = ["x=" + xr, "w=" + wr, "b=" + br,
              "stride=" + lua(pair(stride)),
              "padding=" + lua(pad),
              "dilation=" + lua(pair(dilation)), "groups=%d" % groups,
              "y=" + tensor_ref(y)]
    if backward:
        gy, gyr = randn(list(y.shape), "gy")
        y.backward(gy)
        fields += ["gy=" + gyr, "gx=" + tensor_ref(xg.grad),
                   "gw=" + tensor_ref(wg.grad),
                   "gb=" + (tensor_ref(bg.grad) if bias else "nil")]
    return "{" + ",".join(fields) + "}"


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
    fields = ["x=" + xr, "kernel=" + lua(pair(k)), "stride=" + lua(st),
              "padding=" + lua(pair(padding)),
              "ceil_mode=" + lua(ceil_mode)]
    if kind == "max":
        y, idx = F.max_pool2d(xg, pair(k), st, pair(padding), pair(dilation),
                              ceil_mode, return_indices=True)
        fields += ["dilation=" + lua(pair(dilation)),
                   "indices=" + tensor_ref(idx, index=True)]
    else:
        y = F.avg_pool2d(xg, pair(k), st, pair(padding), ceil_mode,
                         count_include_pad)
        fields.append("count_include_pad=" + lua(count_include_pad))
    gy, gyr = randn(list(y.shape), "gy")
    y.backward(gy)
    fields += ["y=" + tensor_ref(y), "gy=" + gyr, "gx=" + tensor_ref(xg.grad)]
    return "{" + ",".join(fields) + "}"


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
    with open(OUT, "w") as f:
        f.write("-- Generated by spec/reference/make_nn_reference.py with "
                "PyTorch %s; do not edit.\n" % torch.__version__)
        f.write("-- Regenerate: /usr/bin/python3 "
                "spec/reference/make_nn_reference.py\n")
        f.write("-- Tensors are {shape, data (flat, row-major)}; indices "
                "are 1-based.\n")
        f.write("local T = {}\n")
        for i, t in enumerate(TENSORS):
            f.write("T[%d] = %s\n" % (i + 1, t))
        f.write("return {\n")
        for name, cases in (("conv2d", conv), ("max_pool2d", mx),
                            ("avg_pool2d", avg)):
            f.write("%s = {\n" % name)
            for c in cases:
                f.write(" %s,\n" % c)
            f.write("},\n")
        f.write("}\n")
    print("%s: %d conv2d, %d max_pool2d, %d avg_pool2d cases, %d bytes" % (
        OUT, len(conv), len(mx), len(avg), os.path.getsize(OUT)))


main()
