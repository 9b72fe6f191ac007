#!/usr/bin/python3
"""Reference values for spec/nn/*_spec.lua (layers and losses), from PyTorch.

Regenerate from the repository root (with the Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_nn_layers_reference.py

It writes spec/reference/nn_layers_values.lua; the specs read only that file.

Inputs and weights are drawn from a seeded torch.Generator, rounded to
float32 and written exactly (repr of the double), so the same values load
into Ember as float32 or float64.  Every expected value is computed in
float64 from those rounded inputs: a float32 run of Ember is compared with
the true value (tolerance in the spec), a float64 run much more tightly.

Gradients: for an output `out`, the input and parameter gradients of
(out * R).sum(), where R (written as `R`) is a fixed random tensor of
out's shape; for a 0-d loss, of the loss itself (R = 1).

Ember is 1-based: class labels, embedding indices, ignore_index values and
dims are written as Ember takes them; this script converts for PyTorch.
"""
import os

import torch
import torch.nn as tnn
import torch.nn.functional as F

import luavalues

GEN = torch.Generator().manual_seed(20240601)


def randn(*shape, scale=1.0, shift=0.0):
    t = torch.randn(*shape, generator=GEN) * scale + shift
    return t.float().double()


def rand(*shape, lo=0.0, hi=1.0):
    t = torch.rand(*shape, generator=GEN) * (hi - lo) + lo
    return t.float().double()


def randint(lo, hi, *shape):
    """Integers in [lo, hi], both included (Ember's convention)."""
    return torch.randint(lo, hi + 1, shape, generator=GEN)


# {==========================================================================
# The cases (written through luavalues.stored)
# ===========================================================================

CASES = {}


def case(name, **fields):
    assert name not in CASES, name
    CASES[name] = fields

# }==========================================================================


def grads(out, tensors):
    """Gradients of (out * R).sum() w.r.t. tensors; returns R and the list."""
    for t in tensors:
        t.grad = None
    if out.dim() == 0:
        r = torch.ones((), dtype=torch.float64)
        out.backward()
    else:
        r = randn(*out.shape)
        (out * r).sum().backward()
    return r, [t.grad.clone() for t in tensors]


def leaf(t):
    return t.clone().requires_grad_(True)


# {==========================================================================
# Layers
# ===========================================================================

def linear_cases():
    for name, xs, out_f, bias in [("linear", (3, 4), 5, True),
                                  ("linear_3d_nobias", (2, 3, 4), 2, False)]:
        x, w = leaf(randn(*xs)), leaf(randn(out_f, xs[-1], scale=0.5))
        b = leaf(randn(out_f)) if bias else None
        out = F.linear(x, w, b)
        r, g = grads(out, [x, w] + ([b] if bias else []))
        case(name, x=x, weight=w, bias=b, out=out, R=r, gx=g[0], gweight=g[1],
             gbias=g[2] if bias else None)


def conv_cases():
    specs = [
        ("conv_basic", (2, 3, 7, 6), 4, 3, 1, 0, 1, 1, True),
        ("conv_stride_pad", (2, 3, 7, 6), 4, 3, 2, 1, 1, 1, True),
        ("conv_rect_dilation", (1, 2, 8, 7), 4, (2, 3), (2, 1), (1, 0), 2, 1, False),
        ("conv_groups", (2, 4, 5, 5), 6, 3, 1, 1, 1, 2, True),
    ]
    for name, xs, out_c, k, s, p, d, gr, bias in specs:
        kk = (k, k) if isinstance(k, int) else k
        x = leaf(randn(*xs))
        w = leaf(randn(out_c, xs[1] // gr, *kk, scale=0.3))
        b = leaf(randn(out_c)) if bias else None
        out = F.conv2d(x, w, b, s, p, d, gr)
        r, g = grads(out, [x, w] + ([b] if bias else []))
        case(name, x=x, weight=w, bias=b, out=out, R=r, gx=g[0], gweight=g[1],
             gbias=g[2] if bias else None, in_channels=xs[1], out_channels=out_c,
             kernel=list(kk), stride=s if isinstance(s, int) else list(s),
             padding=p if isinstance(p, int) else list(p), dilation=d, groups=gr)


def pool_cases():
    specs = [
        ("maxpool_k2", "max", (2, 3, 6, 6), 2, None, 0, 1, False, True),
        ("maxpool_k3s2p1", "max", (1, 2, 7, 7), 3, 2, 1, 1, False, True),
        ("maxpool_ceil", "max", (1, 2, 8, 8), 3, 2, 0, 1, True, True),
        ("maxpool_dilation", "max", (1, 1, 6, 6), 2, 1, 0, 2, False, True),
        ("avgpool_k2", "avg", (2, 3, 6, 6), 2, None, 0, 1, False, True),
        ("avgpool_k3s2p1", "avg", (1, 2, 7, 7), 3, 2, 1, 1, False, True),
        ("avgpool_nopad_count", "avg", (1, 2, 7, 7), 3, 2, 1, 1, False, False),
        ("avgpool_ceil", "avg", (1, 2, 8, 8), 3, 2, 0, 1, True, True),
    ]
    for name, kind, xs, k, s, p, d, ceil, cip in specs:
        x = leaf(randn(*xs))
        if kind == "max":
            out = F.max_pool2d(x, k, s, p, d, ceil_mode=ceil)
        else:
            out = F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip)
        r, g = grads(out, [x])
        case(name, kind=kind, x=x, out=out, R=r, gx=g[0], kernel=k, stride=s, padding=p,
             dilation=d, ceil_mode=ceil, count_include_pad=cip)


def activation_cases():
    x0 = randn(3, 5, scale=2.0)
    acts = [
        ("relu", lambda x: F.relu(x), {}),
        ("leaky_relu", lambda x: F.leaky_relu(x, 0.01), {}),
        ("leaky_relu_02", lambda x: F.leaky_relu(x, 0.2), {"slope": 0.2}),
        ("gelu", lambda x: F.gelu(x), {"approximate": "none"}),
        ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), {"approximate": "tanh"}),
        ("sigmoid", torch.sigmoid, {}),
        ("tanh", torch.tanh, {}),
        ("softmax", lambda x: F.softmax(x, 1), {"dim": 2}),
        ("log_softmax", lambda x: F.log_softmax(x, 0), {"dim": 1}),
    ]
    for name, fn, extra in acts:
        x = leaf(x0)
        out = fn(x)
        r, g = grads(out, [x])
        case("act_" + name, x=x, out=out, R=r, gx=g[0], **extra)


def batchnorm_cases():
    specs = [
        ("bn1d_2d", tnn.BatchNorm1d, (6, 3), {}),
        ("bn1d_3d", tnn.BatchNorm1d, (4, 3, 5), {}),
        ("bn2d", tnn.BatchNorm2d, (3, 2, 4, 4), {}),
        ("bn2d_cma", tnn.BatchNorm2d, (3, 2, 3, 3), {"momentum": None}),
        ("bn2d_mom", tnn.BatchNorm2d, (2, 2, 3, 3), {"momentum": 0.3, "eps": 1e-3}),
        ("bn2d_noaffine", tnn.BatchNorm2d, (2, 2, 3, 3), {"affine": False}),
        ("bn1d_notrack", tnn.BatchNorm1d, (5, 3), {"track_running_stats": False}),
    ]
    for name, cls, xs, opts in specs:
        c = xs[1]
        x1, x2, x3 = randn(*xs, shift=0.5), randn(*xs, scale=2.0), randn(*xs, scale=1.5, shift=-1)
        m = cls(c, **opts).double()
        if m.affine:
            with torch.no_grad():
                m.weight.copy_(randn(c, shift=1.0))
                m.bias.copy_(randn(c))
        init_state = {k: v.clone() for k, v in m.state_dict().items()}
        m.train()
        y1 = m(x1)
        y2 = m(x2)
        after = {k: v.clone() for k, v in m.state_dict().items()}
        m.eval()
        y3 = m(x3)
        # gradients of one training-mode forward from the initial state
        g_m = cls(c, **opts).double()
        g_m.load_state_dict(init_state)
        g_m.train()
        xg = leaf(x1)
        out = g_m(xg)
        params = [xg] + ([g_m.weight, g_m.bias] if g_m.affine else [])
        r, g = grads(out, params)
        case(name, x1=x1, x2=x2, x3=x3, y1=y1, y2=y2, y3=y3, R=r, gx=g[0],
             gweight=g[1] if g_m.affine else None, gbias=g[2] if g_m.affine else None,
             weight=init_state.get("weight"), bias=init_state.get("bias"),
             running_mean=after.get("running_mean"), running_var=after.get("running_var"),
             num_batches_tracked=int(after["num_batches_tracked"]) if "num_batches_tracked" in after else None,
             momentum=opts.get("momentum", 0.1) if "momentum" not in opts or opts["momentum"] is not None else False,
             eps=opts.get("eps", 1e-5), affine=opts.get("affine", True),
             track_running_stats=opts.get("track_running_stats", True))


def layernorm_cases():
    for name, xs, ns, affine in [("ln_last", (2, 3, 4), [4], True),
                                 ("ln_two", (2, 3, 4), [3, 4], True),
                                 ("ln_noaffine", (5, 6), [6], False)]:
        x = leaf(randn(*xs, scale=2.0, shift=0.3))
        w = leaf(randn(*ns, shift=1.0)) if affine else None
        b = leaf(randn(*ns)) if affine else None
        out = F.layer_norm(x, ns, w, b, 1e-5)
        r, g = grads(out, [x] + ([w, b] if affine else []))
        case(name, x=x, weight=w, bias=b, normalized_shape=ns, out=out, R=r, gx=g[0],
             gweight=g[1] if affine else None, gbias=g[2] if affine else None)


def embedding_cases():
    idx = torch.tensor([[1, 3, 6], [2, 3, 3]])          # 1-based
    for name, pad in [("embedding", None), ("embedding_pad", 3)]:
        w = leaf(randn(6, 3))
        out = F.embedding(idx - 1, w, padding_idx=None if pad is None else pad - 1)
        r, g = grads(out, [w])
        case(name, idx=idx, weight=w, out=out, R=r, gweight=g[0], padding_idx=pad)


def flatten_cases():
    x = randn(2, 3, 2, 2)
    case("flatten", x=x, out=torch.flatten(x, 1))

# }==========================================================================


# {==========================================================================
# Losses
# ===========================================================================

def loss_case(name, fn, x, extra, **fields):
    """Record fn(x) and the gradient w.r.t. x for each reduction."""
    out = {}
    for red in ("none", "mean", "sum"):
        xl = leaf(x)
        o = fn(xl, red)
        r, g = grads(o, [xl])
        out[red] = {"out": o, "R": r, "gx": g[0]}
    case(name, x=x, none=out["none"], mean=out["mean"], sum=out["sum"], **extra, **fields)


def class_loss_cases():
    logits = randn(5, 4, scale=2.0)
    target = randint(1, 4, 5)
    weight = rand(4, lo=0.2, hi=2.0)
    ignored = target.clone()
    ignored[1] = -100
    ignored[3] = -100

    def ce(t, **kw):
        tt = t - 1 if t.dtype == torch.int64 else t
        if t.dtype == torch.int64:
            tt = torch.where(t == -100, t, tt)
        return lambda x, red: F.cross_entropy(x, tt, reduction=red, **kw)

    loss_case("ce", ce(target), logits, {}, target=target)
    loss_case("ce_weight", ce(target, weight=weight), logits, {}, target=target, weight=weight)
    loss_case("ce_ignore", ce(ignored), logits, {}, target=ignored)
    loss_case("ce_weight_ignore", ce(ignored, weight=weight), logits, {}, target=ignored,
              weight=weight)
    loss_case("ce_smooth", ce(target, label_smoothing=0.1), logits, {}, target=target,
              label_smoothing=0.1)
    loss_case("ce_smooth_weight_ignore", ce(ignored, weight=weight, label_smoothing=0.2),
              logits, {}, target=ignored, weight=weight, label_smoothing=0.2)
    # ignore_index given as a class (Ember 2 = PyTorch 1)
    t2 = target.clone()
    t2[0] = 2
    loss_case("ce_ignore_class", lambda x, red: F.cross_entropy(x, t2 - 1, ignore_index=1,
              reduction=red), logits, {}, target=t2, ignore_index=2)
    # [N,C,d] input
    lk = randn(2, 4, 3, scale=2.0)
    tk = randint(1, 4, 2, 3)
    loss_case("ce_kdim", ce(tk, weight=weight), lk, {}, target=tk, weight=weight)
    # unbatched [C] input, 0-d target
    l1 = randn(4)
    t1 = torch.tensor(3)
    loss_case("ce_unbatched", ce(t1), l1, {}, target=t1)
    # class probabilities
    probs = torch.softmax(randn(5, 4), 1).float().double()
    loss_case("ce_probs", ce(probs), logits, {}, target=probs)
    loss_case("ce_probs_smooth_weight", ce(probs, weight=weight, label_smoothing=0.1), logits,
              {}, target=probs, weight=weight, label_smoothing=0.1)
    # nll_loss on log-probabilities
    logp = torch.log_softmax(logits, 1).float().double()
    loss_case("nll", lambda x, red: F.nll_loss(x, target - 1, reduction=red), logp, {},
              target=target)
    loss_case("nll_weight_ignore", lambda x, red: F.nll_loss(
        x, torch.where(ignored == -100, ignored, ignored - 1), weight=weight, reduction=red),
        logp, {}, target=ignored, weight=weight)


def regression_loss_cases():
    x, y = randn(3, 4, scale=1.5), randn(3, 4, scale=1.5)
    loss_case("mse", lambda a, red: F.mse_loss(a, y, reduction=red), x, {}, y=y)
    loss_case("l1", lambda a, red: F.l1_loss(a, y, reduction=red), x, {}, y=y)
    for nm, beta in [("smooth_l1", 1.0), ("smooth_l1_b05", 0.5), ("smooth_l1_b0", 0.0)]:
        loss_case(nm, lambda a, red, b=beta: F.smooth_l1_loss(a, y, reduction=red, beta=b), x,
                  {}, y=y, beta=beta)


def binary_loss_cases():
    p = torch.sigmoid(randn(3, 4, scale=2.0)).float().double()
    y = rand(3, 4)
    w = rand(4, lo=0.5, hi=1.5)
    loss_case("bce", lambda a, red: F.binary_cross_entropy(a, y, reduction=red), p, {}, y=y)
    loss_case("bce_weight", lambda a, red: F.binary_cross_entropy(a, y, weight=w, reduction=red),
              p, {}, y=y, weight=w)
    # exact 0 and 1 probabilities: the logs clamp at -100 (values only)
    pe = p.clone()
    pe[0, 0], pe[1, 1] = 0.0, 1.0
    ye = y.clone()
    ye[0, 0], ye[1, 1] = 1.0, 0.0
    case("bce_clamp", x=pe, y=ye,
         out=F.binary_cross_entropy(pe, ye, reduction="none"))
    x = randn(3, 4, scale=3.0)
    pw = rand(4, lo=0.5, hi=3.0)
    loss_case("bce_logits", lambda a, red: F.binary_cross_entropy_with_logits(
        a, y, reduction=red), x, {}, y=y)
    loss_case("bce_logits_weight_pos", lambda a, red: F.binary_cross_entropy_with_logits(
        a, y, weight=w, pos_weight=pw, reduction=red), x, {}, y=y, weight=w, pos_weight=pw)

# }==========================================================================


def main():
    torch.set_default_dtype(torch.float64)
    linear_cases()
    conv_cases()
    pool_cases()
    activation_cases()
    batchnorm_cases()
    layernorm_cases()
    embedding_cases()
    flatten_cases()
    class_loss_cases()
    regression_loss_cases()
    binary_loss_cases()
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "nn_layers_values.lua")
    luavalues.write(path, luavalues.stored(CASES), "make_nn_layers_reference.py", torch.__version__,
                    notes=["Tensors are {shape=, data=} (row-major; int=true for int64 "
                           "indices, 1-based)."], lines=1)
    print("wrote %s (%d cases)" % (path, len(CASES)))


if __name__ == "__main__":
    main()
