#!/usr/bin/python3
"""Reference values for spec/core/norm_spec.lua (the fused layer_norm,
rms_norm and cross entropy of core/ops/norm.c and core/ops/loss.c), from
PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_norm_reference.py

It writes spec/reference/norm_values.lua; the spec only reads that file.

Inputs are deterministic: element i (row-major) of a tensor with phase p
is sin(i*0.37 + p) * 3 (scale s: times s), rounded to the dtype.  A case
with transpose=true stores x with its last two dims swapped and swaps them
back (a non-contiguous view).  Gradients: the loss is sum(out * gw), gw
built as the inputs (phase 1.5), for x, weight and bias.  torch 1.13 has no
rms_norm: it is written out as torch.rms_norm defines it, x *
rsqrt(mean(x^2) + eps) * weight (eps None: the dtype's machine epsilon).
Cross entropy: targets are 1-based (Ember's), the class weight has phase
2.5 and is positive; ties=true makes every logit of a row equal.
"""
import math

import torch

import luavalues

DT = {"float32": torch.float32, "float64": torch.float64}


def make(shape, dtype, phase, scale=3.0):
    n = math.prod(shape)
    vals = [math.sin(i * 0.37 + phase) * scale for i in range(n)]
    return torch.tensor(vals, dtype=DT[dtype]).reshape(shape)


def swap_last(shape):
    s = list(shape)
    s[-1], s[-2] = s[-2], s[-1]
    return s


def rms_norm(x, k, w, eps):
    dims = tuple(range(x.dim() - k, x.dim()))
    y = x * torch.rsqrt(x.pow(2).mean(dims, keepdim=True) + eps)
    return y * w if w is not None else y


NORM = []


def norm(op, shape, k, dtype, affine=True, bias=True, transpose=False, eps=None):
    stored = swap_last(shape) if transpose else list(shape)
    base = make(stored, dtype, 0.7)
    x = (base.transpose(-1, -2) if transpose else base).clone().requires_grad_(True)
    ns = list(shape[len(shape) - k:])
    w = (make(ns, dtype, 0.3) + 0.5).requires_grad_(True) if affine else None
    b = (make(ns, dtype, 1.1) * 0.5).requires_grad_(True) if affine and bias and op == "layer_norm" else None
    if op == "layer_norm":
        e = 1e-5 if eps is None else eps
        y = torch.nn.functional.layer_norm(x, ns, w, b, e)
    else:
        e = torch.finfo(DT[dtype]).eps if eps is None else eps
        y = rms_norm(x, k, w, e)
    gw = make(list(shape), dtype, 1.5)
    (y * gw).sum().backward()
    c = {"op": op, "shape": stored, "k": k, "dtype": dtype, "transpose": transpose,
         "eps": eps, "x": base.flatten().tolist(), "out": y.detach().flatten().tolist(),
         "gw": gw.flatten().tolist(), "gx": x.grad.flatten().tolist()}
    if w is not None:
        c["w"] = w.detach().flatten().tolist()
        c["gwt"] = w.grad.flatten().tolist()
    if b is not None:
        c["b"] = b.detach().flatten().tolist()
        c["gb"] = b.grad.flatten().tolist()
    NORM.append(c)


for op in ("layer_norm", "rms_norm"):
    for dt in DT:
        norm(op, [4, 6], 1, dt)
        norm(op, [2, 3, 5], 2, dt)
        norm(op, [3, 7], 1, dt, affine=False)
        norm(op, [5, 4], 1, dt, transpose=True)
        norm(op, [0, 6], 1, dt)
        norm(op, [3, 4], 2, dt, eps=0.1)
    norm(op, [3, 8], 1, "float32", bias=False)
    norm(op, [2, 1030], 1, "float32")   # a row longer than a warp's share

CE = []


def ce(n, c, dtype, weight=False, ignore=None, smoothing=0.0, reduction="mean",
       ties=False, scale=3.0):
    x = make([n, c], dtype, 0.7, scale)
    if ties:
        x = torch.zeros(n, c, dtype=DT[dtype])
    x.requires_grad_(True)
    t = torch.tensor([(i * 7 + 3) % c for i in range(n)], dtype=torch.int64)
    ig = -100
    if ignore is not None:
        t[ignore] = ig = -7
    w = make([c], dtype, 2.5).abs() + 0.25 if weight else None
    loss = torch.nn.functional.cross_entropy(x, t, weight=w, ignore_index=ig,
                                             label_smoothing=smoothing, reduction=reduction)
    g = make(list(loss.shape), dtype, 1.5)
    (loss * g).sum().backward()
    tl = [v + 1 if v != ig else ig for v in t.tolist()]
    case = {"n": n, "c": c, "dtype": dtype, "target": tl, "ignore": ig,
            "smoothing": smoothing, "reduction": reduction, "x": x.detach().flatten().tolist(),
            "out": loss.detach().flatten().tolist(), "out_shape": list(loss.shape),
            "g": g.flatten().tolist(), "gx": x.grad.flatten().tolist()}
    if w is not None:
        case["weight"] = w.flatten().tolist()
    CE.append(case)


for dt in DT:
    for red in ("mean", "sum", "none"):
        ce(6, 5, dt, reduction=red)
        ce(6, 5, dt, weight=True, ignore=2, smoothing=0.2, reduction=red)
    ce(4, 6, dt, ties=True, smoothing=0.3)
    ce(5, 7, dt, scale=60.0, ignore=0)
ce(8, 65, "float32", smoothing=0.05)
ce(2, 1030, "float32", weight=True, smoothing=0.1)   # a long row

luavalues.write("spec/reference/norm_values.lua", {"norm": NORM, "ce": CE},
                "make_norm_reference.py", torch.__version__, lines=1)
print(len(NORM), "norm cases,", len(CE), "cross entropy cases")
