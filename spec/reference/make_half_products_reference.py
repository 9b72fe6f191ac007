#!/usr/bin/python3
"""Reference values for spec/core/half_products_spec.lua: bfloat16 and
float16 matmul, linear, conv2d and scaled dot-product attention, forward
and gradients, from PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_half_products_reference.py

It writes spec/reference/half_products_values.lua; the spec only reads it.

Inputs are refinputs' float32 values rounded to the case's dtype (exact in
the file: a 16-bit float is a float32).  Gradients: the loss is
sum(op(...) * w), w built the same way (phase 1.5) in the output dtype.

Which PyTorch computes each value (1.13 on the CPU):
  - bfloat16 conv2d: PyTorch's own bfloat16 kernel (oneDNN: float32 sums,
    one rounding), forward and backward;
  - everything else: the float32 op on the widened inputs, each result and
    gradient rounded once to the dtype, which is the semantics Ember
    implements and PyTorch 2.x's CPU kernels have.  PyTorch 1.13 has no
    CPU float16 matmul or convolution and no scaled_dot_product_attention,
    and its bfloat16 matmul, for small shapes that skip oneDNN, rounds to
    bfloat16 inside the sum: [7] x [7, 3] gives 0.140625 where the exact
    value is 0.10119629 (float32 sums, rounded once: 0.10107422).
"""
import math

import torch

import luavalues
from refinputs import make

HALF = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def inp(shape, dtype, phase):
    return make(list(shape), "float32", phase).to(HALF[dtype])


def run(dtype, fn, xs):
    """fn over the inputs xs (half tensors): the output and the gradient of
    each input for the loss sum(out * w).  bfloat16 runs natively where
    native=True; else in float32 from widened inputs, rounded once."""
    native = dtype == "bfloat16" and fn.native
    leaves = [x.detach().clone() if native else x.detach().float() for x in xs]
    for t in leaves:
        t.requires_grad_(True)
    out = fn(*leaves)
    w = make(list(out.shape), "float32", 1.5).to(HALF[dtype])
    if out.numel() > 0:
        (out * (w if native else w.float())).sum().backward()
    grads = [(t.grad if t.grad is not None else torch.zeros_like(t)).to(HALF[dtype])
             for t in leaves]
    return out.detach().to(HALF[dtype]), w, grads


def op(native):
    def wrap(f):
        f.native = native
        return f
    return wrap


CASES = []


def add(kind, dtype, fn, shapes, **fields):
    xs = [inp(s, dtype, 0.7 + 0.45 * i) for i, s in enumerate(shapes)]
    out, w, grads = run(dtype, fn, xs)
    c = dict(fields, kind=kind, dtype=dtype, shapes=[list(s) for s in shapes],
             inputs=[luavalues.flat(x.float()) for x in xs],
             out_shape=list(out.shape), out=luavalues.flat(out.float()),
             w=luavalues.flat(w.float()),
             grads=[luavalues.flat(g.float()) for g in grads])
    CASES.append(c)


def matmul_cases(dtype):
    # ta/tb: the operand is stored transposed (its last two dims swapped)
    # and swapped back as a view before the product
    for (M, K, N) in [(1, 1, 1), (17, 33, 19), (3, 1000, 2), (33, 17, 1),
                      (24, 40, 33), (3, 0, 4), (0, 3, 4)]:
        for ta, tb in [(False, False)] + ([(True, False), (False, True), (True, True)]
                                          if (M, K, N) == (17, 33, 19) else []):
            sa = [K, M] if ta else [M, K]
            sb = [N, K] if tb else [K, N]

            @op(False)
            def f(a, b, ta=ta, tb=tb):
                return torch.matmul(a.transpose(-1, -2) if ta else a,
                                    b.transpose(-1, -2) if tb else b)
            add("matmul", dtype, f, [sa, sb], ta=ta, tb=tb)
    for sa, sb in [([2, 5, 7], [2, 7, 3]), ([2, 3, 4, 5], [5, 6]), ([7], [7, 3]),
                   ([4, 7], [7]), ([3, 1, 4, 5], [2, 5, 6])]:
        @op(False)
        def g(a, b):
            return torch.matmul(a, b)
        add("matmul", dtype, g, [sa, sb], ta=False, tb=False)


def linear_cases(dtype):
    for sx, o, bias in [([4, 9], 5, False), ([2, 3, 9], 5, False), ([4, 9], 5, True)]:
        shapes = [sx, [o, sx[-1]]] + ([[o]] if bias else [])

        @op(False)
        def f(*a):
            return torch.nn.functional.linear(*a)
        add("linear", dtype, f, shapes, bias=bias)


def conv_cases(dtype):
    for sx, sw, stride, padding, groups in [
            ([2, 3, 7, 6], [4, 3, 3, 2], 1, 0, 1),
            ([1, 4, 9, 8], [6, 2, 3, 3], 2, 1, 2),
            ([2, 3, 5, 5], [5, 3, 1, 1], 1, 0, 1)]:
        @op(True)
        def f(x, w, stride=stride, padding=padding, groups=groups):
            return torch.nn.functional.conv2d(x, w, None, stride, padding, 1, groups)
        add("conv2d", dtype, f, [sx, sw], stride=stride, padding=padding, groups=groups)


def attention(q, k, v, causal):
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        L, S = s.shape[-2], s.shape[-1]
        allow = torch.ones(L, S, dtype=torch.bool).tril()
        s = s.masked_fill(~allow, -math.inf)
    return torch.softmax(s, -1) @ v


def attention_cases(dtype):
    for sq, sk, sv, causal in [([2, 5, 8], [2, 7, 8], [2, 7, 6], False),
                               ([1, 2, 6, 4], [1, 2, 6, 4], [1, 2, 6, 4], True)]:
        @op(False)
        def f(q, k, v, causal=causal):
            return attention(q, k, v, causal)
        add("attention", dtype, f, [sq, sk, sv], causal=causal)


for dt in ("bfloat16", "float16"):
    matmul_cases(dt)
    linear_cases(dt)
    conv_cases(dt)
    attention_cases(dt)

luavalues.write("spec/reference/half_products_values.lua", CASES,
                "make_half_products_reference.py", torch.__version__, lines=1)
