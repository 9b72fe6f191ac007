#!/usr/bin/python3
"""Reference values for spec/nn/small_layers_spec.lua (RMSNorm, SiLU, Mish),
from PyTorch.

Regenerate from the repository root (with the Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_nn_small_reference.py

It writes spec/reference/nn_small_values.lua; the specs read only that file.

torch 1.13 has F.silu and F.mish but not RMSNorm (added in PyTorch 2.4),
so rms_norm() below is PyTorch 2.4's definition written with 1.13's ops:
    x * rsqrt(mean(x^2 over the normalized dims) + eps) [* weight]
with eps defaulting to torch.finfo(x.dtype).eps.  Ember runs the float32
cases in float32, so their eps is float32's (2^-23) while the values are
computed in float64: the case stores the eps it used.

As in make_nn_layers_reference.py: inputs are drawn from a seeded
generator and rounded to float32; expected values are float64; gradients
are those of (out * R).sum() for a fixed random R of out's shape.
"""
import os

import torch
import torch.nn.functional as F

import luavalues

GEN = torch.Generator().manual_seed(20261207)
CASES = {}


def randn(*shape, scale=1.0, shift=0.0):
    t = torch.randn(*shape, generator=GEN) * scale + shift
    return t.float().double()


def leaf(t):
    return t.clone().requires_grad_(True)


def grads(out, tensors):
    r = randn(*out.shape)
    (out * r).sum().backward()
    return r, [t.grad.clone() for t in tensors]


def rms_norm(x, normalized_shape, weight, eps):
    dims = tuple(range(-len(normalized_shape), 0))
    y = x * torch.rsqrt(x.pow(2).mean(dims, keepdim=True) + eps)
    return y * weight if weight is not None else y


def activation_cases():
    # wide range: large |x| checks mish's softplus neither overflows nor
    # loses the tail; exact 0 checks the gradients there
    x0 = torch.cat([randn(12, scale=3.0), torch.tensor([0.0, -30.0, 30.0, 1e-4])]).view(4, 4)
    for name, fn in [("silu", F.silu), ("mish", F.mish)]:
        x = leaf(x0)
        out = fn(x)
        r, g = grads(out, [x])
        CASES["act_" + name] = dict(x=luavalues.tensor(x), out=luavalues.tensor(out),
                                    R=luavalues.tensor(r), gx=luavalues.tensor(g[0]))


def rmsnorm_cases():
    specs = [("rms_last", (2, 3, 4), [4], True, None),
             ("rms_two", (2, 3, 4), [3, 4], True, 1e-6),
             ("rms_noaffine", (5, 6), [6], False, None),
             ("rms_small", (3, 4), [4], True, None)]   # tiny values: eps matters
    for name, xs, ns, affine, eps in specs:
        scale = 1e-4 if name == "rms_small" else 2.0
        x0 = randn(*xs, scale=scale, shift=0.1 * scale)
        w0 = randn(*ns, shift=1.0) if affine else None
        case = dict(x=luavalues.tensor(x0), normalized_shape=ns, eps=eps)
        if affine:
            case["weight"] = luavalues.tensor(w0)
        for dtype, finfo in [("float32", torch.finfo(torch.float32).eps),
                             ("float64", torch.finfo(torch.float64).eps)]:
            x = leaf(x0)
            w = leaf(w0) if affine else None
            out = rms_norm(x, ns, w, finfo if eps is None else eps)
            r, g = grads(out, [x] + ([w] if affine else []))
            case[dtype] = dict(out=luavalues.tensor(out), R=luavalues.tensor(r),
                               gx=luavalues.tensor(g[0]),
                               gweight=luavalues.tensor(g[1]) if affine else None)
        CASES[name] = case


def main():
    torch.set_default_dtype(torch.float64)
    activation_cases()
    rmsnorm_cases()
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "nn_small_values.lua")
    luavalues.write(path, CASES, "make_nn_small_reference.py", torch.__version__,
                    notes=["Tensors are {shape=, data=} (row-major).  RMSNorm cases hold "
                           "one result per dtype (eps = that dtype's machine epsilon "
                           "unless the case gives eps)."], lines=1)
    print("wrote %s (%d cases)" % (path, len(CASES)))


if __name__ == "__main__":
    main()
