#!/usr/bin/python3
"""Reference values for spec/core/linalg_spec.lua (norm, cdist, normalize,
mm, bmm, outer, baddbmm, diagonal, diag, trace, einsum), computed with
PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_linalg_reference.py

It writes spec/reference/linalg_values.lua; the spec only reads that file.

Input k of a case with shape s holds, in float64, v_j = ((7 j + 3 k) mod 11
- 5) / 4 for j = 0 .. numel - 1 (exact in binary, zeros and ties
included), viewed as s.  A case names the call twice: `lua`, an Ember
expression over x1, x2, x3 (1-based dims), and `py`, the same in PyTorch.
The gradient of each input is that of sum(out * w) with w = (arange(numel)
+ 1) / 8, in float64.
"""
import math

import torch

import luavalues


def inp(shape, k):
    n = 1
    for s in shape:
        n *= s
    j = torch.arange(n, dtype=torch.float64)
    return (((7 * j + 3 * k) % 11 - 5) / 4).reshape(shape)


F = torch.nn.functional
CASES = [
    # norms
    ([[3, 4]], "x1:norm()", lambda a: a.norm()),
    ([[3, 4]], "x1:norm(1, 2)", lambda a: a.norm(1, 1)),
    ([[3, 4]], "x1:norm(math.huge, 1)", lambda a: a.norm(math.inf, 0)),
    ([[3, 4]], "x1:norm(-math.huge, -1)", lambda a: torch.linalg.vector_norm(a, -math.inf, -1)),
    ([[3, 4]], "x1:norm(3, 2, {keepdim = true})", lambda a: a.norm(3, 1, keepdim=True)),
    ([[3, 4]], "x1:norm(0.5, 1)", lambda a: a.norm(0.5, 0)),
    ([[3, 4]], "x1:norm(0)", lambda a: a.norm(0)),
    ([[2, 3, 4]], "x1:norm(2, {1, 3})", lambda a: a.norm(2, (0, 2))),
    ([[2, 3, 4]], "x1:norm(2, -2, {keepdim = true})", lambda a: a.norm(2, -2, keepdim=True)),
    ([[4]], "ember.norm(x1, 1)", lambda a: a.norm(1)),
    ([[3, 4]], "x1:t():norm(2, 1)", lambda a: a.t().norm(2, 0)),
    # distances
    ([[3, 2], [4, 2]], "ember.cdist(x1, x2)", lambda a, b: torch.cdist(a, b)),
    ([[3, 2], [4, 2]], "ember.cdist(x1, x2, 1)", lambda a, b: torch.cdist(a, b, 1)),
    ([[3, 2], [4, 2]], "ember.cdist(x1, x2, math.huge)", lambda a, b: torch.cdist(a, b, math.inf)),
    ([[3, 2], [4, 2]], "ember.cdist(x1, x2, 3)", lambda a, b: torch.cdist(a, b, 3)),
    ([[2, 3, 5], [2, 4, 5]], "ember.cdist(x1, x2)", lambda a, b: torch.cdist(a, b)),
    ([[3, 4]], "ember.nn.functional.normalize(x1)", lambda a: F.normalize(a)),
    ([[3, 4]], "ember.nn.functional.normalize(x1, {p = 1, dim = 1})", lambda a: F.normalize(a, 1, 0)),
    ([[2, 3, 4]], "ember.nn.functional.normalize(x1, {dim = -1})", lambda a: F.normalize(a, dim=-1)),
    # products
    ([[3, 4], [4, 2]], "ember.mm(x1, x2)", lambda a, b: torch.mm(a, b)),
    ([[3, 4], [2, 4]], "x1:mm(x2:t())", lambda a, b: a.mm(b.t())),
    ([[2, 3, 4], [2, 4, 5]], "ember.bmm(x1, x2)", lambda a, b: torch.bmm(a, b)),
    ([[3], [4]], "ember.outer(x1, x2)", lambda a, b: torch.outer(a, b)),
    ([[2, 3, 5], [2, 3, 4], [2, 4, 5]], "ember.baddbmm(x1, x2, x3)",
     lambda a, b, c: torch.baddbmm(a, b, c)),
    ([[3, 5], [2, 3, 4], [2, 4, 5]], "ember.baddbmm(x1, x2, x3, {beta = 0.5, alpha = 2})",
     lambda a, b, c: torch.baddbmm(a, b, c, beta=0.5, alpha=2)),
    # diagonals
    ([[3, 4]], "x1:diagonal()", lambda a: a.diagonal()),
    ([[3, 4]], "x1:diagonal(1)", lambda a: a.diagonal(1)),
    ([[3, 4]], "x1:diagonal(-2)", lambda a: a.diagonal(-2)),
    ([[3, 4]], "x1:diagonal(4)", lambda a: a.diagonal(4)),
    ([[2, 3, 4]], "x1:diagonal(0, 2, 3)", lambda a: a.diagonal(0, 1, 2)),
    ([[2, 3, 4]], "x1:diagonal(1, -1, 1)", lambda a: a.diagonal(1, -1, 0)),
    ([[3]], "ember.diag(x1)", lambda a: torch.diag(a)),
    ([[3]], "ember.diag(x1, 1)", lambda a: torch.diag(a, 1)),
    ([[3]], "ember.diag(x1, -2)", lambda a: torch.diag(a, -2)),
    ([[3, 4]], "ember.diag(x1)", lambda a: torch.diag(a)),
    ([[3, 4]], "ember.diag(x1, -1)", lambda a: torch.diag(a, -1)),
    ([[3, 4]], "x1:trace()", lambda a: a.trace()),
    ([[4, 4]], "x1:trace()", lambda a: a.trace()),
    # einsum
    ([[3, 4], [4, 2]], "ember.einsum('ij,jk->ik', x1, x2)", lambda a, b: torch.einsum('ij,jk->ik', a, b)),
    ([[2, 3, 4], [2, 4, 5]], "ember.einsum('bij,bjk->bik', x1, x2)",
     lambda a, b: torch.einsum('bij,bjk->bik', a, b)),
    ([[2, 2, 3, 4], [2, 2, 5, 4]], "ember.einsum('bhqd,bhkd->bhqk', x1, x2)",
     lambda a, b: torch.einsum('bhqd,bhkd->bhqk', a, b)),
    ([[2, 2, 3, 5], [2, 2, 5, 4]], "ember.einsum('bhqk,bhkd->bhqd', x1, x2)",
     lambda a, b: torch.einsum('bhqk,bhkd->bhqd', a, b)),
    ([[3], [4]], "ember.einsum('i,j->ij', x1, x2)", lambda a, b: torch.einsum('i,j->ij', a, b)),
    ([[3, 4]], "ember.einsum('ij->ji', x1)", lambda a: torch.einsum('ij->ji', a)),
    ([[4, 4]], "ember.einsum('ii->i', x1)", lambda a: torch.einsum('ii->i', a)),
    ([[4, 4]], "ember.einsum('ii', x1)", lambda a: torch.einsum('ii', a)),
    ([[3, 4]], "ember.einsum('ij->', x1)", lambda a: torch.einsum('ij->', a)),
    ([[3, 4]], "ember.einsum('ij->j', x1)", lambda a: torch.einsum('ij->j', a)),
    ([[3, 4], [3, 4]], "ember.einsum('bi,bi->b', x1, x2)", lambda a, b: torch.einsum('bi,bi->b', a, b)),
    ([[3, 4], [2, 4, 5], [3, 5]], "ember.einsum('bi,oij,bj->bo', x1, x2, x3)",
     lambda a, b, c: torch.einsum('bi,oij,bj->bo', a, b, c)),
    ([[3, 4], [4, 2]], "ember.einsum('ij,jk', x1, x2)", lambda a, b: torch.einsum('ij,jk', a, b)),
    ([[2, 3], [3, 4], [4, 5]], "ember.einsum('ab,bc,cd->ad', x1, x2, x3)",
     lambda a, b, c: torch.einsum('ab,bc,cd->ad', a, b, c)),
    ([[2, 3, 4]], "ember.einsum('abc->cb', x1)", lambda a: torch.einsum('abc->cb', a)),
]


def main():
    cases = []
    for shapes, expr, fn in CASES:
        xs = [inp(s, k).requires_grad_() for k, s in enumerate(shapes, 1)]
        y = fn(*xs)
        w = ((torch.arange(y.numel(), dtype=torch.float64) + 1) / 8).reshape(y.shape)
        if y.requires_grad:      # not norm(0): a count, no gradient
            (y * w).sum().backward()
            grads = [luavalues.flat(x.grad if x.grad is not None else torch.zeros_like(x))
                     for x in xs]
        else:
            grads = False
        cases.append({"lua": expr, "shapes": shapes, "shape": list(y.shape),
                      "data": luavalues.flat(y), "grads": grads})
    luavalues.write("spec/reference/linalg_values.lua", cases,
                    "make_linalg_reference.py", torch.__version__, lines=1)

if __name__ == "__main__":
    main()
