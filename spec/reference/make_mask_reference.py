#!/usr/bin/python3
"""Reference values for spec/core/mask_spec.lua (nonzero, masked_select,
masked_scatter, take, scatter with and without reduce), from PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_mask_reference.py

It writes spec/reference/mask_values.lua; the spec only reads that file.

Every input is stored whole (flat data and shape), so the spec rebuilds it
exactly.  Inputs: element i of an input with phase p is sin(i*0.37 + p)*3
rounded to the dtype; zeros=true zeroes every third element (nonzero,
prod's zero cases), ties=true rounds floats to integers (amax/amin ties).
transpose=true: the stored data is the input with its last two dims
swapped, which the spec swaps back (a non-contiguous view).  Indices are
stored 1-based, dims 1-based.  Gradients (floats): the loss is
sum(out * w), w stored; gx is t's gradient, gsrc src's.
"""

import torch

import luavalues
from refinputs import DTYPES, FLOATS, make


def tensor_field(name, t, transpose=False):
    """(name, {data, shape}) for tensor t: the input t is with its last two
    dims swapped when transpose is true (the spec swaps them back)."""
    if transpose:
        t = t.transpose(-1, -2).contiguous()
    return name, luavalues.tensor(t)


CASES = []


def add(op, dtype, x, out, transpose=False, extra=(), grads=()):
    """A case: extra and grads are (name, value) fields."""
    CASES.append(dict([("op", op), ("dtype", dtype), tensor_field("x", x, transpose),
                       ("transpose", transpose or None), *extra,
                       ("out", luavalues.tensor(out)), *grads]))


def loss_grads(out, inputs, names):
    """w (phase 1.5, out's shape) and the gradients of sum(out * w)."""
    w = make(list(out.shape), str(out.dtype).split(".")[1], 1.5)
    (out * w).sum().backward()
    f = [tensor_field("w", w)]
    for n, t in zip(names, inputs):
        f.append(tensor_field(n, t.grad))
    return f


# nonzero: every dtype, zeros, empty, 0-d, non-contiguous
for dtype in DTYPES:
    for shape, tr in (([3, 4], False), ([2, 3, 2], False), ([4, 3], True),
                      ([0, 3], False), ([5], False)):
        x = make(shape, dtype, 0.3, zeros=True)
        xin = x.transpose(-1, -2) if tr else x
        add("nonzero", dtype, xin, torch.nonzero(xin) + 1, tr)
for v in (0.0, 2.5):
    x = torch.tensor(v)
    add("nonzero", "float32", x, torch.nonzero(x) + 1)


def mask_of(shape, phase):
    return make(shape, "float64", phase) > 0


# masked_select: floats with gradients (broadcast both ways), integers
for dtype in ("float32", "float64", "int32", "int64", "uint8", "bool"):
    for xs, ms, tr in (([3, 4], [3, 4], False), ([3, 4], [4], False),
                       ([4], [3, 4], False), ([4, 3], [3, 4], True),
                       ([0, 4], [4], False)):
        x = make(xs, dtype, 0.7)
        m = mask_of(ms, 2.0)
        xin = (x.transpose(-1, -2) if tr else x).clone()
        grads = ()
        if dtype in FLOATS:
            xin.requires_grad_(True)
            out = torch.masked_select(xin, m)
            grads = loss_grads(out, [xin], ["gx"])
        out = torch.masked_select(xin.detach(), m)
        add("masked_select", dtype, xin.detach(), out, tr,
            [tensor_field("mask", m)], grads)

# masked_scatter (out of place; the spec also runs the in-place form
# where the mask does not grow t): src larger, src exactly the count,
# broadcast mask, non-contiguous t
for dtype in ("float32", "float64", "int32", "int64", "uint8", "bool"):
    for xs, ms, ss, tr in (([3, 4], [3, 4], [4, 4], False),
                           ([3, 4], [4], [12], False),
                           ([4, 3], [3, 4], [3, 5], True),
                           ([4], [3, 4], [20], False),
                           ([2, 0], [2, 0], [3], False)):
        x = make(xs, dtype, 0.9)
        m = mask_of(ms, 2.0)
        src = make(ss, dtype, 4.0)
        xin = (x.transpose(-1, -2) if tr else x).clone()
        extra = [tensor_field("mask", m), tensor_field("src", src)]
        grads = ()
        if dtype in FLOATS:
            xin.requires_grad_(True)
            src.requires_grad_(True)
            out = xin.masked_scatter(m, src)
            grads = loss_grads(out, [xin, src], ["gx", "gsrc"])
        out = xin.detach().masked_scatter(m, src.detach())
        add("masked_scatter", dtype, xin.detach(), out, tr, extra, grads)

# take: repeated indices, int32 indices, empty, non-contiguous
for dtype in ("float32", "float64", "int32", "int64", "uint8", "bool"):
    for xs, idx, tr in (([3, 4], [[1, 12, 5], [5, 2, 1]], False),
                        ([4, 3], [7, 1, 12, 7], True),
                        ([5], [], False), ([2, 3], [[[6]]], False)):
        x = make(xs, dtype, 1.1)
        xin = (x.transpose(-1, -2) if tr else x).clone()
        it = torch.tensor(idx, dtype=torch.int64)
        extra = [tensor_field("index", it), ("index_shape", list(it.shape))]
        grads = ()
        if dtype in FLOATS:
            xin.requires_grad_(True)
            out = torch.take(xin, it - 1)
            grads = loss_grads(out, [xin], ["gx"])
        add("take", dtype, xin.detach(), torch.take(xin.detach(), it - 1), tr,
            extra, grads)

# scatter: every reduce, both dims, a value, ties, zeros, index smaller
# than src, non-contiguous t
REDUCES = (None, "sum", "prod", "amax", "amin", "mean")
INDEX_ANY = [[1, 3, 1, 2], [2, 2, 3, 1]]     # dim 1 of a [3, 4]: repeats
INDEX_PERM = [[3, 1, 2, 3], [1, 3, 1, 1]]    # unique per column
INDEX_D2 = [[4, 1, 4], [2, 2, 3], [1, 3, 3]]  # dim 2 of a [3, 4]: repeats
INDEX_D2_PERM = [[4, 1, 2], [2, 3, 1], [1, 3, 4]]


def scatter_case(dtype, reduce, dim, idx, src_shape, value=None, tr=False,
                 zeros=False, ties=False):
    x = make([4, 3] if tr else [3, 4], dtype, 0.5, zeros=zeros, ties=ties)
    xin = (x.transpose(-1, -2) if tr else x).clone()
    it = torch.tensor(idx, dtype=torch.int64)
    src = (None if value is not None
           else make(src_shape, dtype, 2.2, zeros=zeros, ties=ties))

    def run(a, s):
        if value is not None:
            if reduce is None:
                return a.scatter(dim - 1, it - 1, value)
            s = torch.full(list(it.shape), value, dtype=a.dtype)
        if reduce is None:
            return a.scatter(dim - 1, it - 1, s)
        return a.scatter_reduce(dim - 1, it - 1, s, reduce, include_self=True)

    extra = [("dim", dim), tensor_field("index", it), ("reduce", reduce)]
    if value is not None:
        extra.append(("value", luavalues.typed(value, dtype)))   # 2.0 for floats
    else:
        extra.append(tensor_field("src", src))
    grads = ()
    # PyTorch's backward refuses a src larger than the index (the spec
    # checks Ember's zeros there itself)
    if dtype in FLOATS and (src is None or list(src.shape) == list(it.shape)):
        xin.requires_grad_(True)
        if src is not None:
            src.requires_grad_(True)
        out = run(xin, src)
        names = ["gx"] + (["gsrc"] if src is not None else [])
        grads = loss_grads(out, [xin] + ([src] if src is not None else []), names)
    out = run(xin.detach(), None if src is None else src.detach())
    add("scatter", dtype, xin.detach(), out, tr, extra, grads)


for dtype in ("float32", "float64", "int32", "int64"):
    for reduce in REDUCES:
        anyi, anyd2 = (INDEX_PERM, INDEX_D2_PERM) if reduce is None else (INDEX_ANY, INDEX_D2)
        scatter_case(dtype, reduce, 1, anyi, [2, 4])
        scatter_case(dtype, reduce, 2, anyd2, [3, 5])     # src larger than index
        scatter_case(dtype, reduce, 1, anyi, [2, 4], tr=True)
        scatter_case(dtype, reduce, 1, anyi, None, value=2)
        if reduce in ("amax", "amin"):
            scatter_case(dtype, reduce, 2, anyd2, [3, 3], ties=True)
        if reduce == "prod":
            scatter_case(dtype, reduce, 2, anyd2, [3, 3], zeros=True)
for dtype in ("uint8", "bool"):
    scatter_case(dtype, None, 1, INDEX_PERM, [2, 4])
scatter_case("uint8", "amax", 2, INDEX_D2, [3, 3])
scatter_case("float32", "sum", 1, [[]], [2, 4])       # an empty index ([1, 0])
# the only zero scattered to a place where t's own value is 1 (prod)
x = torch.tensor([[1.0, 2.0], [3.0, 0.0]], dtype=torch.float64, requires_grad=True)
s = torch.tensor([[0.0, 5.0], [4.0, 0.0]], dtype=torch.float64, requires_grad=True)
i = torch.tensor([[1, 2], [1, 2]])
o = x.scatter_reduce(0, i - 1, s, "prod", include_self=True)
add("scatter", "float64", x.detach(), o.detach(), False,
    [("dim", 1), tensor_field("index", i), ("reduce", "prod"),
     tensor_field("src", s.detach())],
    loss_grads(o, [x, s], ["gx", "gsrc"]))

luavalues.write("spec/reference/mask_values.lua", CASES, "make_mask_reference.py",
                torch.__version__, lines=1)
print(len(CASES), "cases")
