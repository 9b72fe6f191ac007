#!/usr/bin/python3
"""Reference values for spec/core/numerics_spec.lua, computed with PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_reference.py

It writes spec/reference/values.lua.  The specs only read that file; they
never need PyTorch.

Inputs are deterministic and independent of any RNG: element i (row-major,
flattened) of an input with phase k is sin(i*0.37 + k) * scale, rounded to
the input's dtype (integers: rounded; uint8: absolute value; bool: > 0).

Expected values: results whose dtype is floating point are computed in
float64 from the (already rounded) inputs and then rounded to the dtype
PyTorch gives the result, so a float32 expectation is the correctly rounded
true value, not PyTorch's own float32 arithmetic.  Integer and bool results
are computed in the inputs' own dtypes (they are exact).

Ember's dimensions and returned indices are 1-based; PyTorch's are 0-based.
Cases store Ember's convention (args.dim, index values); this script
converts when it calls PyTorch.
"""
import math
import os

import torch

import luavalues

torch.set_default_dtype(torch.float32)

DTYPES = {
    "float32": torch.float32, "float64": torch.float64, "int32": torch.int32,
    "int64": torch.int64, "uint8": torch.uint8, "bool": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}


# ---------------------------------------------------------------- inputs

class Input:
    def __init__(self, name, shape, dtype, k, scale=3.0, nonzero=False,
                 transpose=None, values=None):
        self.name, self.shape, self.dtype = name, list(shape), dtype
        self.transpose = transpose          # Ember dims, 1-based
        n = 1
        for s in shape:
            n *= s
        if values is None:
            raw = [math.sin(i * 0.37 + k) * scale for i in range(n)]
            if dtype in ("float32", "float64"):
                values = raw
            elif dtype == "bool":
                values = [x > 0 for x in raw]
            else:
                values = [int(round(x)) for x in raw]
                if dtype == "uint8":
                    values = [abs(x) for x in values]
                if nonzero:
                    values = [x if x != 0 else 1 for x in values]
        assert len(values) == n
        t = torch.tensor(values, dtype=DTYPES[dtype]).reshape(shape)
        self.data = t.flatten().tolist()    # exact values of the dtype
        self.base = t

    def torch(self):
        t = self.base
        if self.transpose:
            a, b = self.transpose
            t = t.transpose(a - 1, b - 1)
        return t

    def value(self):
        """What the data file holds for this input."""
        return {"shape": self.shape, "dtype": self.dtype, "data": self.data,
                "transpose": list(self.transpose) if self.transpose else None}


INPUTS = {}


def inp(name, *args, **kw):
    if name not in INPUTS:
        INPUTS[name] = Input(name, *args, **kw)
    return INPUTS[name]


# ---------------------------------------------------------------- ops

def tdim(d):
    return d - 1 if d > 0 else d


def run_op(op, ts, args):
    """Apply op (Ember's name and conventions) to torch tensors."""
    a = ts[0]
    b = ts[1] if len(ts) > 1 else args.get("scalar")
    dim = args.get("dim")
    keep = bool(args.get("keepdim", False))
    if op == "matmul":
        return torch.matmul(a, b)
    if op in ("add", "sub", "mul", "div", "pow"):
        return getattr(torch, op)(a, b)
    if op in ("eq", "ne", "lt", "le", "gt", "ge"):
        return getattr(torch, op)(a, b)
    if op in ("sum", "mean", "prod", "var", "std"):
        f = getattr(torch, op)
        if dim is None:
            return f(a)
        return f(a, tdim(dim), keepdim=keep)
    if op in ("max", "min"):
        f = getattr(torch, op)
        if dim is None:
            return f(a)
        v, i = f(a, tdim(dim), keepdim=keep)
        return v, i + 1
    if op in ("argmax", "argmin"):
        f = getattr(torch, op)
        if dim is None:
            return f(a) + 1
        return f(a, tdim(dim), keepdim=keep) + 1
    if op == "softmax":
        return torch.softmax(a, tdim(dim))
    if op == "log_softmax":
        return torch.log_softmax(a, tdim(dim))
    if op in ("exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "neg"):
        return getattr(torch, op)(a)
    if op == "clamp":
        return torch.clamp(a, args.get("min"), args.get("max"))
    raise ValueError(op)


def is_float(dt):
    return dt in (torch.float32, torch.float64)


def compute(op, inputs, args):
    ts = [x.torch() for x in inputs]
    actual = run_op(op, ts, args)
    outs = actual if isinstance(actual, tuple) else (actual,)
    result = []
    # float results: recompute in float64 and round to the result's dtype
    wide = None
    if any(is_float(o.dtype) for o in outs):
        wide = run_op(op, [t.double() for t in ts], args)
        wide = wide if isinstance(wide, tuple) else (wide,)
    for j, o in enumerate(outs):
        if is_float(o.dtype):
            w = wide[j]
            assert list(w.shape) == list(o.shape)
            o = w.to(o.dtype)
        result.append(o)
    return result


def check_unique_extreme(op, x, args):
    """argmax/argmin/max/min with indices: the extreme must be unique, else
    which index is returned is a convention, not numerics."""
    t = x.torch().double()
    dim = args.get("dim")
    if dim is None:
        t = t.flatten()
        d = 0
    else:
        d = tdim(dim)
    ext = t.amax(d, keepdim=True) if op in ("max", "argmax") else t.amin(d, keepdim=True)
    counts = (t == ext).sum(d)
    assert int(counts.max()) == 1, "tie in %s of %s" % (op, x.name)


CASES = []


def case(name, op, inputs, args=None):
    args = args or {}
    if op in ("argmax", "argmin") or (op in ("max", "min") and "dim" in args):
        check_unique_extreme(op, inputs[0], args)
    outs = compute(op, inputs, args)
    CASES.append((name, op, inputs, args, outs))


def shape_str(s):
    return "[" + ",".join(str(x) for x in s) + "]"


def desc(x):
    s = "%s%s" % (x.dtype, shape_str(x.shape))
    if x.transpose:
        s += ".T"
    return s


# ---------------------------------------------------------------- matmul

def matmul_cases():
    specs = [
        ("1d.1d", [7], [7]),
        ("2d.1d", [5, 7], [7]),
        ("1d.2d", [7], [7, 4]),
        ("2d.2d", [7, 13], [13, 5]),
        ("2d.2d 1x1", [1, 1], [1, 1]),
        ("2d.2d outer", [3, 1], [1, 4]),
        ("2d.2d row.col", [1, 6], [6, 1]),
        ("3d.3d batched", [3, 4, 5], [3, 5, 2]),
        ("3d.2d batched", [3, 4, 5], [5, 6]),
        ("2d.3d batched", [4, 5], [3, 5, 2]),
        ("3d.1d", [3, 4, 5], [5]),
        ("1d.3d", [5], [3, 5, 2]),
        ("4d.3d broadcast batch", [2, 1, 4, 5], [3, 5, 2]),
        ("4d.4d broadcast batch", [2, 1, 3, 4], [1, 3, 4, 2]),
    ]
    for dt in ("float32", "float64"):
        for label, sa, sb in specs:
            a = inp("mm_a_%s_%s" % (dt, shape_str(sa)), sa, dt, 0.3)
            b = inp("mm_b_%s_%s" % (dt, shape_str(sb)), sb, dt, 1.1)
            case("matmul %s %s x %s" % (label, desc(a), desc(b)), "matmul", [a, b])
        # transposed (non-contiguous) operands
        at = inp("mm_at_%s" % dt, [13, 7], dt, 0.7, transpose=(1, 2))
        bt = inp("mm_bt_%s" % dt, [5, 13], dt, 2.3, transpose=(1, 2))
        a = inp("mm_a_%s_%s" % (dt, shape_str([7, 13])), [7, 13], dt, 0.3)
        b = inp("mm_b_%s_%s" % (dt, shape_str([13, 5])), [13, 5], dt, 1.1)
        case("matmul A^T.B %s x %s" % (desc(at), desc(b)), "matmul", [at, b])
        case("matmul A.B^T %s x %s" % (desc(a), desc(bt)), "matmul", [a, bt])
        case("matmul A^T.B^T %s x %s" % (desc(at), desc(bt)), "matmul", [at, bt])
        b3t = inp("mm_b3t_%s" % dt, [3, 2, 5], dt, 0.9, transpose=(2, 3))
        a3 = inp("mm_a_%s_%s" % (dt, shape_str([3, 4, 5])), [3, 4, 5], dt, 0.3)
        case("matmul batched A.B^T %s x %s" % (desc(a3), desc(b3t)), "matmul", [a3, b3t])


# ---------------------------------------------------------------- reductions

def reduction_cases():
    shapes = [
        ("float32", [7, 13], 0.2),
        ("float32", [3, 1, 5], 1.3),
        ("float64", [2, 3, 4], 0.6),
        ("float32", [6], 2.1),
        ("float64", [7, 13], 0.2),
    ]
    ops = ["sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "std"]
    for dt, shape, k in shapes:
        x = inp("red_%s_%s" % (dt, shape_str(shape)), shape, dt, k)
        for op in ops:
            case("%s all %s" % (op, desc(x)), op, [x])
            for d in range(1, len(shape) + 1):
                for keep in (False, True):
                    case("%s dim=%d keepdim=%s %s" % (op, d, keep, desc(x)), op, [x],
                         {"dim": d, "keepdim": keep})
    # negative dim
    x = inp("red_float32_[7,13]", [7, 13], "float32", 0.2)
    for op in ("sum", "max", "argmin", "var"):
        case("%s dim=-1 %s" % (op, desc(x)), op, [x], {"dim": -1})
    # a non-contiguous input
    xt = inp("red_t_float32", [13, 7], "float32", 0.4, transpose=(1, 2))
    for op in ("sum", "mean", "max", "argmax", "std"):
        for d in (1, 2):
            case("%s dim=%d %s" % (op, d, desc(xt)), op, [xt], {"dim": d})
    # integer and bool tensors: sum/prod promote to int64, max/min keep dtype
    xi = inp("red_int32_[4,5]", [4, 5], "int32", 0.5, nonzero=True)
    for op in ("sum", "prod", "max", "min"):
        case("%s all %s" % (op, desc(xi)), op, [xi])
        if op in ("sum", "prod"):
            case("%s dim=2 %s" % (op, desc(xi)), op, [xi], {"dim": 2})
    xl = inp("red_int64_[3,4]", [3, 4], "int64", 0.15, scale=1000.0)
    for op in ("sum", "max", "min", "argmax", "argmin"):
        case("%s all %s" % (op, desc(xl)), op, [xl])
        case("%s dim=1 %s" % (op, desc(xl)), op, [xl], {"dim": 1})
    xb = inp("red_bool_[3,5]", [3, 5], "bool", 0.8)
    case("sum all %s" % desc(xb), "sum", [xb])
    case("sum dim=2 %s" % desc(xb), "sum", [xb], {"dim": 2})
    xu = inp("red_uint8_[2,6]", [2, 6], "uint8", 0.1, scale=40.0)
    case("sum all %s" % desc(xu), "sum", [xu])


# ---------------------------------------------------------------- softmax

def softmax_cases():
    specs = [
        ("float32", [7, 13], 0.5, 3.0),
        ("float32", [3, 1, 5], 1.7, 3.0),
        ("float64", [2, 3, 4], 0.9, 3.0),
        ("float32", [4, 6], 0.25, 150.0),     # x*50: exp overflows float32
        ("float64", [4, 6], 0.25, 150.0),
        ("float32", [9], 2.5, 3.0),
        ("float64", [3, 40], 0.1, 3000.0),   # exp overflows float64 too
    ]
    for dt, shape, k, scale in specs:
        x = inp("sm_%s_%s_%g" % (dt, shape_str(shape), scale), shape, dt, k, scale=scale)
        for op in ("softmax", "log_softmax"):
            for d in range(1, len(shape) + 1):
                case("%s dim=%d %s scale=%g" % (op, d, desc(x), scale), op, [x], {"dim": d})
            case("%s dim=-1 %s scale=%g" % (op, desc(x), scale), op, [x], {"dim": -1})
    xt = inp("sm_t_float32", [6, 5], "float32", 0.8, transpose=(1, 2))
    for op in ("softmax", "log_softmax"):
        for d in (1, 2):
            case("%s dim=%d %s" % (op, d, desc(xt)), op, [xt], {"dim": d})


# ---------------------------------------------------------------- broadcasting

def broadcast_cases():
    shape_pairs = [
        ([3, 1], [1, 4]),
        ([2, 3, 4], [4]),
        ([5, 1, 3], [4, 1]),
        ([3, 4], [1]),
        ([1], [3, 4]),
        ([3, 4], []),
        ([2, 1, 4], [3, 1]),
        ([7, 13], [7, 13]),
        ([1, 1, 1], [2, 1, 3]),
    ]
    for dt in ("float32", "float64"):
        for sa, sb in shape_pairs:
            a = inp("bc_a_%s_%s" % (dt, shape_str(sa)), sa, dt, 0.4)
            b = inp("bc_b_%s_%s" % (dt, shape_str(sb)), sb, dt, 1.9)
            for op in ("add", "sub", "mul", "div"):
                case("%s %s %s" % (op, desc(a), desc(b)), op, [a, b])
            # pow: positive bases
            pa = inp("bc_pa_%s_%s" % (dt, shape_str(sa)), sa, dt, 0.4,
                     values=[abs(math.sin(i * 0.37 + 0.4)) * 3 + 0.25
                             for i in range(math.prod(sa))])
            case("pow %s %s" % (desc(pa), desc(b)), "pow", [pa, b])
    # a transposed operand
    at = inp("bc_at_float32", [4, 3], "float32", 2.7, transpose=(1, 2))
    b = inp("bc_b_float32_[1,4]", [1, 4], "float32", 1.9)
    for op in ("add", "mul"):
        case("%s %s %s" % (op, desc(at), desc(b)), op, [at, b])
    # integer broadcasting stays exact
    ai = inp("bc_int32_[3,1]", [3, 1], "int32", 0.4, scale=20.0)
    bi = inp("bc_int32_[1,4]", [1, 4], "int32", 1.9, scale=20.0)
    for op in ("add", "sub", "mul"):
        case("%s %s %s" % (op, desc(ai), desc(bi)), op, [ai, bi])


# ---------------------------------------------------------------- promotion

def promotion_cases():
    f32 = inp("pr_float32_[3,4]", [3, 4], "float32", 0.6)
    f64 = inp("pr_float64_[3,4]", [3, 4], "float64", 1.4)
    f64r = inp("pr_float64_[4]", [4], "float64", 2.2)
    i32 = inp("pr_int32_[3,4]", [3, 4], "int32", 0.9, scale=10.0)
    i32nz = inp("pr_int32nz_[3,4]", [3, 4], "int32", 2.9, scale=6.0, nonzero=True)
    i32r = inp("pr_int32_[4]", [4], "int32", 0.3, scale=10.0)
    i64 = inp("pr_int64_[3,4]", [3, 4], "int64", 1.7, scale=100.0)
    i64nz = inp("pr_int64nz_[3,1]", [3, 1], "int64", 0.2, scale=9.0, nonzero=True)
    u8 = inp("pr_uint8_[3,4]", [3, 4], "uint8", 0.5, scale=50.0)
    b = inp("pr_bool_[3,4]", [3, 4], "bool", 0.8)
    br = inp("pr_bool_[4]", [4], "bool", 2.0)
    pairs = [
        (i32, f32, ("add", "sub", "mul", "div")),
        (f32, i32, ("add", "mul")),
        (i64, i32, ("add", "sub", "mul")),
        (i32r, i64, ("add",)),
        (i32, i32nz, ("div",)),       # true division -> float32
        (i64, i64nz, ("div",)),
        (u8, i64, ("add", "sub", "mul")),
        (u8, f32, ("add",)),
        (b, i32, ("add", "mul")),
        (i32, b, ("add",)),
        (br, i64, ("add",)),
        (b, f32, ("add", "mul")),
        (f64, f32, ("add", "sub", "mul", "div")),
        (f32, f64r, ("add",)),
        (i32, f64, ("add", "mul")),
        (i64, f32, ("add",)),
    ]
    for x, y, ops in pairs:
        for op in ops:
            case("%s %s %s" % (op, desc(x), desc(y)), op, [x, y])
    # comparisons give bool
    ca = inp("cmp_float32_[3,4]", [3, 4], "float32", 0.6,
             values=[float(round(math.sin(i * 0.37 + 0.6) * 2)) for i in range(12)])
    cb = inp("cmp_float32_[4]", [4], "float32", 1.0, values=[-1.0, 0.0, 1.0, 2.0])
    ci = inp("cmp_int32_[3,1]", [3, 1], "int32", 0.0, values=[-1, 0, 1])
    cd = inp("cmp_float64_[3,4]", [3, 4], "float64", 0.6,
             values=[round(math.sin(i * 0.37 + 0.6) * 2) + (0.5 if i % 3 == 0 else 0.0)
                     for i in range(12)])
    for op in ("eq", "ne", "lt", "le", "gt", "ge"):
        case("%s %s %s" % (op, desc(ca), desc(cb)), op, [ca, cb])
    for op in ("eq", "lt", "ge"):
        case("%s %s %s" % (op, desc(ca), desc(ci)), op, [ca, ci])
        case("%s %s %s" % (op, desc(ci), desc(cd)), op, [ci, cd])
        case("%s %s %s" % (op, desc(i32), desc(i32r)), op, [i32, i32r])
    # Python/Lua numbers as the second operand
    scalars = [
        (i32, "add", 3), (i32, "mul", 2.5), (i32, "div", 4), (i64, "sub", 7),
        (u8, "add", 3), (b, "add", 1), (b, "mul", 2.5), (f32, "mul", 3),
        (f32, "div", 3.0), (f64, "add", 0.1), (f32, "pow", 2), (f64, "pow", 3),
    ]
    for x, op, s in scalars:
        case("%s %s scalar %s" % (op, desc(x), luavalues.lua(s)), op, [x], {"scalar": s})
    for op in ("eq", "lt", "ge"):
        case("%s %s scalar 1" % (op, desc(ca)), op, [ca], {"scalar": 1})
        case("%s %s scalar 0.5" % (op, desc(ci)), op, [ci], {"scalar": 0.5})


# ---------------------------------------------------------------- elementwise

def elementwise_cases():
    for dt in ("float32", "float64"):
        x = inp("ew_%s_[5,7]" % dt, [5, 7], dt, 0.35)
        pos = inp("ew_pos_%s_[5,7]" % dt, [5, 7], dt, 0.35,
                  values=[abs(math.sin(i * 0.37 + 0.35)) * 5 + 1e-3 for i in range(35)])
        big = inp("ew_big_%s_[4,6]" % dt, [4, 6], dt, 0.25, scale=150.0)
        for op in ("exp", "tanh", "sigmoid", "relu", "abs", "neg"):
            case("%s %s" % (op, desc(x)), op, [x])
        for op in ("log", "sqrt"):
            case("%s %s" % (op, desc(pos)), op, [pos])
        for op in ("tanh", "sigmoid", "relu", "abs"):
            case("%s %s scale=150" % (op, desc(big)), op, [big])
        case("clamp(-1,2) %s" % desc(x), "clamp", [x], {"min": -1.0, "max": 2.0})
        case("clamp(min=0) %s" % desc(x), "clamp", [x], {"min": 0.0})
        case("clamp(max=0.5) %s" % desc(x), "clamp", [x], {"max": 0.5})
        sp = inp("ew_special_%s" % dt, [5], dt, 0.0, values=[0.0, -1.0, 1.0, 4.0, 1e-30])
        for op in ("log", "sqrt"):
            case("%s special values %s" % (op, desc(sp)), op, [sp])
    xt = inp("ew_t_float32", [7, 5], "float32", 1.2, transpose=(1, 2))
    for op in ("exp", "sigmoid"):
        case("%s %s" % (op, desc(xt)), op, [xt])
    xi = inp("ew_int32_[2,5]", [2, 5], "int32", 0.45, scale=9.0)
    for op in ("abs", "relu", "neg"):
        case("%s %s" % (op, desc(xi)), op, [xi])
    case("clamp(-2,3) %s" % desc(xi), "clamp", [xi], {"min": -2, "max": 3})


# ---------------------------------------------------------------- output

def tensor_value(t):
    return luavalues.tensor(t, dtype=NAMES[t.dtype])


def main():
    matmul_cases()
    reduction_cases()
    softmax_cases()
    broadcast_cases()
    promotion_cases()
    elementwise_cases()

    names = set()
    inputs = luavalues.Shared("I")    # an input is written once, as I[k]
    cases = []
    for name, op, xs, args, outs in CASES:
        assert name not in names, "duplicate case name " + name
        names.add(name)
        cases.append({"name": name, "op": op,
                      "inputs": [inputs.add(x.value(), key=id(x)) for x in xs],
                      "args": args or None, "expected": tensor_value(outs[0]),
                      "expected_indices": tensor_value(outs[1]) if len(outs) > 1 else None})

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "values.lua")
    luavalues.write(path, cases, "make_reference.py", torch.__version__,
                    notes=["Dims and returned indices follow Ember (1-based)."],
                    shared=[inputs], lines=1)
    print("wrote %s: %d cases, %d inputs, %d bytes"
          % (path, len(CASES), len(inputs.values), os.path.getsize(path)))

if __name__ == "__main__":
    main()
