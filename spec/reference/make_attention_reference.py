#!/usr/bin/python3
"""Reference values for spec/nn/attention_spec.lua
(nn.functional.scaled_dot_product_attention), from PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_attention_reference.py

It writes spec/reference/attention_values.lua; the spec only reads that
file.  torch 1.13 has no scaled_dot_product_attention, so the values come
from its explicit formula in float64, whatever the case's dtype:

    softmax(q k^T * scale + mask) v

with a bool mask as 0 where true and -inf where false, is_causal as the
top-left lower triangle (query i sees key j <= i, PyTorch 2.x's rule for
L != S too), and a row that sees no key giving zeros and zero gradients
(PyTorch >= 2.5's _safe_softmax).  Inputs are deterministic: element i
(row-major) of an input with phase p is sin(i*0.37 + p) * amp.  A case
with transpose=true stores q, k and v with the last two dims swapped and
swaps them back (non-contiguous views).  Gradients: the loss is
sum(out * w), w built as the inputs (phase 1.5).
"""
import math

import torch

import luavalues


def make(shape, phase, amp=1.0):
    n = math.prod(shape)
    vals = [math.sin(i * 0.37 + phase) * amp for i in range(n)]
    return torch.tensor(vals, dtype=torch.float64).reshape(shape)


def swap_last(shape):
    s = list(shape)
    s[-1], s[-2] = s[-2], s[-1]
    return s


def attention(q, k, v, mask, causal, scale):
    L, S = q.shape[-2], k.shape[-2]
    add = torch.zeros(L, S, dtype=torch.float64)
    if causal:
        add = add.masked_fill(torch.ones(L, S, dtype=torch.bool).triu(1), -math.inf)
    if mask is not None:
        add = torch.where(mask, 0.0, -math.inf) if mask.dtype == torch.bool else mask
    s = q @ k.transpose(-1, -2) * scale
    s, add = torch.broadcast_tensors(s, add)
    dead = torch.isneginf(add).all(-1, keepdim=True)
    # a dead row's softmax is taken of zeros and then dropped, so that no
    # NaN reaches the gradients of q and k through it
    p = torch.softmax(s + torch.where(dead, 0.0, add), -1)
    p = torch.where(dead, 0.0, p)
    return p @ v


CASES = []


def case(name, B, L, S, E, Ev, dtype="float64", causal=False, mask=None,
         scale=None, transpose=False, amp=1.0, qzero=False):
    shapes = {"q": B + [L, E], "k": B + [S, E], "v": B + [S, Ev]}
    phases = {"q": 0.1, "k": 0.9, "v": 2.3}
    c = {"name": name, "dtype": dtype, "causal": causal, "scale": scale,
         "transpose": transpose}
    xs = {}
    for key in ("q", "k", "v"):
        stored = swap_last(shapes[key]) if transpose else shapes[key]
        base = make(stored, phases[key], amp)
        if key == "q" and qzero:
            base = base * 0
        base = base.to(getattr(torch, dtype)).double()   # the dtype's values
        c[key] = luavalues.tensor(base)
        xs[key] = (base.transpose(-1, -2) if transpose else base).clone().requires_grad_(True)
    m = None
    if mask is not None:
        kind, mshape, dead_row = mask
        if kind == "bool":
            mv = make(mshape, 3.1) > -0.6
            if dead_row is not None:
                mv[..., dead_row, :] = False
            c["mask"] = luavalues.tensor(mv, dtype="bool")
            m = mv
        else:
            mv = make(mshape, 3.1, 2.0).to(getattr(torch, dtype)).double()
            if dead_row is not None:
                mv[..., dead_row, :] = -math.inf
            c["mask"] = luavalues.tensor(mv, dtype=dtype)
            m = mv
    sc = scale if scale is not None else 1 / math.sqrt(E)
    out = attention(xs["q"], xs["k"], xs["v"], m, causal, sc)
    w = make(list(out.shape), 1.5).to(getattr(torch, dtype)).double()
    (out * w).sum().backward()
    c["out"] = luavalues.tensor(out)
    c["w"] = luavalues.tensor(w)
    for key in ("q", "k", "v"):
        c["g" + key] = luavalues.tensor(xs[key].grad)
    CASES.append(c)


for dt in ("float64", "float32"):
    case("plain (B,H,L,E)", [2, 3], 5, 7, 4, 3, dt)
    case("causal L = S", [2, 2], 6, 6, 4, 5, dt, causal=True)
    case("causal L < S (top-left)", [1, 2], 3, 7, 4, 3, dt, causal=True)
    case("causal L > S", [2], 7, 3, 4, 3, dt, causal=True)
    case("bool mask (L,S)", [2, 2], 5, 6, 3, 4, dt, mask=("bool", [5, 6], None))
    case("bool mask (B,1,L,S), a row with nothing to attend", [2, 3], 4, 5, 3, 2, dt,
         mask=("bool", [2, 1, 4, 5], 2))
    case("float mask (B,H,L,S)", [2, 2], 4, 6, 3, 3, dt, mask=("float", [2, 2, 4, 6], None))
    case("float mask (S) with -inf", [3], 4, 5, 2, 3, dt, mask=("float", [5], None))
    case("scale 0.3", [2], 5, 4, 6, 2, dt, scale=0.3)
    case("non-contiguous", [2, 2], 5, 6, 4, 3, dt, transpose=True)
    case("2-D", [], 6, 5, 3, 4, dt)
    case("ties: q = 0 attends uniformly", [2], 3, 5, 4, 3, dt, qzero=True)
    case("several tiles, causal", [1], 130, 130, 4, 3, dt, causal=True)
    case("several tiles", [1], 70, 140, 3, 2, dt)
    case("several tiles, float mask", [1], 66, 130, 2, 2, dt,
         mask=("float", [66, 130], 65))
    case("large scores", [2], 5, 6, 4, 3, dt, amp=30.0)
case("empty L", [2], 0, 4, 3, 2)
case("empty S (zeros)", [2], 3, 0, 3, 2)
case("empty batch", [0, 2], 3, 4, 3, 2)
case("E = 0 (uniform), scale 1", [2], 3, 4, 0, 2, scale=1.0)

luavalues.write("spec/reference/attention_values.lua", CASES,
                "make_attention_reference.py", torch.__version__, lines=1)
