#!/usr/bin/python3
"""Reference values for spec/core/half_spec.lua (bfloat16 and float16),
from PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_half_reference.py

It writes spec/reference/half_values.lua; the spec only reads that file.

Two parts:
  - conv: float32 and float64 values (rounding ties, subnormals, overflow,
    NaN, infinities, -0) converted by PyTorch to each half type, stored as
    the 16-bit pattern and as the value it stands for (widened exactly);
  - ops: each op of the spec's table (same names) run by PyTorch on half
    inputs (refinputs' sin inputs rounded to the dtype, so the spec builds
    the same tensors exactly), with the result's dtype and values and, for
    differentiable ops, the gradients of sum(op(...) * w), w the input of
    phase 2.3 in the result's dtype.  x is [4, 9] (phase 0.7), y [4, 9]
    (phase 1.9); `pos` inputs are |v| + 0.25; t=True stores x as [9, 4]
    and transposes it before the op (a non-contiguous input).
PyTorch computes these on the CPU in float32 and rounds once (reductions
accumulate in float32), which is the rule Ember follows.  Where PyTorch
1.13 has no half kernel for an op's forward or backward (many float16 ones), the case says widened=true and
the values are PyTorch's float32 results on the same inputs, rounded; so
are those of RULE, whose half kernels in PyTorch 1.13 round intermediates.
"""
import struct

import torch
import torch.nn.functional as F

import luavalues
from refinputs import make

HALF = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def bits(t):
    return [v & 0xFFFF for v in t.view(torch.int16).flatten().tolist()]


def conv_cases():
    f32 = lambda b: struct.unpack("<f", struct.pack("<I", b))[0]
    vals = [0.0, -0.0, 1.0, -2.5, 1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-11, 1 + 3 * 2**-11,
            1 + 2**-8 + 2**-20, 65504.0, 65519.0, 65520.0, 1e5, 2.0**-24, 2.0**-25,
            3 * 2.0**-25, 2.0**-26, 6e-5, 1e-8, 1e-39, -1.5e-40, 1e-45, f32(0x7F7FFFFF),
            f32(0x7F7F8000), f32(0x7F7F7FFF), float("inf"), float("-inf"), float("nan"),
            0.1, -0.3, 1 / 3, 1e30, -1e-30]
    out = []
    for src in ("float32", "float64"):
        x = torch.tensor(vals, dtype=getattr(torch, src))
        entry = {"src": src, "data": x.tolist()}
        for name, dt in HALF.items():
            h = x.to(dt)
            entry[name] = {"bits": bits(h), "value": h.float().tolist()}
        out.append(entry)
    return out


def half_input(shape, dt, phase, pos=False, t=False):
    stored = [shape[1], shape[0]] if t else shape
    x = make(stored, "float32", phase)
    if pos:
        x = x.abs() + 0.25
    x = x.to(HALF[dt])
    return (x.t() if t else x), x


U = lambda f: (f, 1)      # x only
B = lambda f: (f, 2)      # x and y
OPS = {
    "exp": U(torch.exp), "log": U(torch.log), "sqrt": U(torch.sqrt),
    "tanh": U(torch.tanh), "sigmoid": U(torch.sigmoid), "relu": U(torch.relu),
    "gelu": U(F.gelu), "gelu_tanh": U(lambda x: F.gelu(x, approximate="tanh")),
    "silu": U(F.silu), "sin": U(torch.sin), "abs": U(torch.abs), "neg": U(torch.neg),
    "reciprocal": U(torch.reciprocal), "square": U(lambda x: x * x),
    "pow_s": U(lambda x: x ** 1.5), "add_s": U(lambda x: x + 0.1),
    "mul_s": U(lambda x: x * 3), "rsub_s": U(lambda x: 1 - x),
    "clamp": U(lambda x: x.clamp(-1, 1)), "leaky_relu": U(lambda x: F.leaky_relu(x, 0.1)),
    "add": B(torch.add), "sub": B(torch.sub), "mul": B(torch.mul), "div": B(torch.div),
    "maximum": B(torch.maximum), "pow": B(torch.pow),
    "where": B(lambda x, y: torch.where(x > 0, x, y)),
    "lt": B(torch.lt),
    "sum": U(lambda x: x.sum()), "sum_d2": U(lambda x: x.sum(1)),
    "mean_d2": U(lambda x: x.mean(1)), "prod_d1": U(lambda x: x.prod(0)),
    "max_d2": U(lambda x: x.max(1)[0]), "min_all": U(lambda x: x.min()),
    "argmax_d2": U(lambda x: x.argmax(1) + 1),
    "var_d2": U(lambda x: x.var(1)), "std_d2": U(lambda x: x.std(1)),
    "norm": U(lambda x: x.norm()), "logsumexp_d2": U(lambda x: x.logsumexp(1)),
    "cumsum_d2": U(lambda x: x.cumsum(1)),
    "softmax": U(lambda x: x.softmax(1)), "log_softmax": U(lambda x: x.log_softmax(1)),
    "layer_norm": U(lambda x: F.layer_norm(x, [9])),
    "mse": B(F.mse_loss),
    "cross_entropy": U(lambda x: F.cross_entropy(x, torch.tensor([0, 8, 3, 3]))),
    "sort": U(lambda x: x.sort(1)[0]), "topk": U(lambda x: x.topk(3, 1)[0]),
    "gather": U(lambda x: x.gather(1, torch.tensor([[0, 8], [2, 2], [1, 0], [5, 6]]))),
    "cat": B(lambda x, y: torch.cat([x, y], 0)),
}
POS = {"log", "sqrt", "reciprocal", "pow_s", "pow"}
NOGRAD = {"lt", "argmax_d2", "sort", "topk"}  # no float result to differentiate (sort: index moves)
# PyTorch 1.13's bfloat16 kernels of these round intermediates (layer_norm
# is off by up to 0.016): their reference is the float32 rule, widened=true
RULE = {"layer_norm", "gelu_tanh"}
TRANSPOSED = {"exp", "add", "sum_d2", "softmax", "layer_norm", "cumsum_d2", "mul_s"}


def forward_backward(f, args, grad, dt):
    """op's result and the gradients of sum(out * w) (None without grad);
    w holds dt's values whatever out's dtype."""
    args = tuple(a.detach().requires_grad_(True) for a in args)
    out = f(*args)
    if not (grad and out.is_floating_point()):
        return out, None
    w = make(list(out.shape), "float32", 2.3).to(HALF[dt]).to(out.dtype)
    (out * w).sum().backward()
    return out, [a.grad for a in args]


def op_case(name, dt, t):
    f, nin = OPS[name]
    x, xs = half_input([4, 9], dt, 0.7, name in POS, t)
    y, ys = half_input([4, 9], dt, 1.9, name == "div", False)
    args = (x, y)[:nin]
    grad = name not in NOGRAD
    try:
        if name in RULE:
            raise RuntimeError("the float32 rule")
        out, grads = forward_backward(f, args, grad, dt)
        wide = False
    except RuntimeError:  # no half kernel in this PyTorch: the same rule by hand
        out, grads = forward_backward(f, tuple(a.float() for a in args), grad, dt)
        wide = True
    c = {"op": name, "dtype": dt, "t": t, "x": xs.flatten().tolist(), "xshape": list(xs.shape),
         "out_shape": list(out.shape), "widened": wide}
    if nin == 2:
        c["y"] = ys.flatten().tolist()
    if wide and out.is_floating_point():
        out = out.to(HALF[dt])
    c["out_dtype"] = str(out.dtype).replace("torch.", "")
    if out.dtype == torch.int64:
        c["out"] = out.flatten().tolist()
    elif out.dtype == torch.bool:
        c["out"] = [bool(v) for v in out.flatten().tolist()]
    else:
        c["out"] = out.float().flatten().tolist()
    if grads:
        for k, g in zip(("gx", "gy"), grads):
            c[k] = g.to(HALF[dt]).float().flatten().tolist()
    return c


def main():
    ops = []
    for dt in HALF:
        for name in OPS:
            ops.append(op_case(name, dt, False))
            if name in TRANSPOSED:
                ops.append(op_case(name, dt, True))
    luavalues.write("spec/reference/half_values.lua", {"conv": conv_cases(), "ops": ops},
                    "make_half_reference.py", torch.__version__, lines=2)


main()
