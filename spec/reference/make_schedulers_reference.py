#!/usr/bin/python3
"""Reference values for spec/optim/schedulers_spec.lua: the schedulers
people use for transformers (LinearLR, OneCycleLR, SequentialLR,
CosineAnnealingWarmRestarts) and the warm-up-then-cosine recipes,
computed with PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_schedulers_reference.py

It writes spec/reference/schedulers_values.lua.  The specs only read that
file; they never need PyTorch.

Each case makes an optimizer (SGD with momentum 0.9, or Adam) over one or
two groups (group k starts at lr 0.1 * k), builds the scheduler, and
records the lr of every group after construction and after each step
(with OneCycleLR also the momentum, or Adam's beta1).  A case with
`epochs` calls step(epoch) with those values instead of step().  Each
case's constructor is written twice: as Python here and as Lua source
(a function(opt, optim) returning the scheduler) that the data file
carries.  All arithmetic is in doubles on both sides.
"""
import math
import os
import warnings

import torch
from torch.optim import lr_scheduler as L

import luavalues

warnings.filterwarnings("ignore")   # step(epoch) is deprecated; still PyTorch's API


def nanogpt_lambda(warmup, decay, ratio_min):
    """nanoGPT's get_lr(it) / learning_rate (examples/char_gpt.lua's form):
    linear warm-up, then half a cosine down to min_lr, then min_lr."""
    def f(it):
        if it < warmup:
            return (it + 1) / (warmup + 1)
        if it > decay:
            return ratio_min
        r = (it - warmup) / (decay - warmup)
        return ratio_min + 0.5 * (1 + math.cos(math.pi * r)) * (1 - ratio_min)
    return f


NANOGPT_LUA = """function(opt, optim)
  local warmup, decay, ratio_min = 5, 30, 0.1
  return optim.LambdaLR(opt, function(it)
    if it < warmup then return (it + 1) / (warmup + 1) end
    if it > decay then return ratio_min end
    local r = (it - warmup) / (decay - warmup)
    return ratio_min + 0.5 * (1 + math.cos(math.pi * r)) * (1 - ratio_min)
  end)
end"""

FRACTIONAL = [0.5, 1.25, 2, 3.7, 4.99, 5, 6.5, 10, 13.3, 20.9, 21, 45.5, 7, 0]

# name, optimizer ("sgd" or "adam"), groups, steps, Lua constructor body
# (after "return "), Python factory, epochs for step(epoch) or None
CASES = [
    ("linearlr_default", "sgd", 1, 8, "optim.LinearLR(opt)", lambda o: L.LinearLR(o), None),
    ("linearlr", "sgd", 2, 10, "optim.LinearLR(opt, 0.1, 0.9, 7)",
     lambda o: L.LinearLR(o, 0.1, 0.9, 7), None),
    ("linearlr_decay", "sgd", 1, 15,
     "optim.LinearLR(opt, {start_factor = 1, end_factor = 0.05, total_iters = 12})",
     lambda o: L.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=12), None),
    ("onecycle_cos", "sgd", 1, 30, "optim.OneCycleLR(opt, 1.0, {total_steps = 30})",
     lambda o: L.OneCycleLR(o, 1.0, total_steps=30), None),
    ("onecycle_linear_three_phase", "sgd", 2, 29,
     "optim.OneCycleLR(opt, {0.5, 1.0}, {epochs = 5, steps_per_epoch = 6, "
     "anneal_strategy = 'linear', three_phase = true, pct_start = 0.25, "
     "base_momentum = {0.8, 0.7}, max_momentum = 0.9})",
     lambda o: L.OneCycleLR(o, [0.5, 1.0], epochs=5, steps_per_epoch=6,
                            anneal_strategy="linear", three_phase=True, pct_start=0.25,
                            base_momentum=[0.8, 0.7], max_momentum=0.9), None),
    ("onecycle_adam", "adam", 1, 20,
     "optim.OneCycleLR(opt, 0.01, {total_steps = 25, pct_start = 0.4, div_factor = 10, "
     "final_div_factor = 100})",
     lambda o: L.OneCycleLR(o, 0.01, total_steps=25, pct_start=0.4, div_factor=10.0,
                            final_div_factor=100.0), None),
    ("onecycle_no_momentum", "sgd", 1, 12,
     "optim.OneCycleLR(opt, 2.0, {total_steps = 12, cycle_momentum = false, three_phase = true})",
     lambda o: L.OneCycleLR(o, 2.0, total_steps=12, cycle_momentum=False, three_phase=True),
     None),
    ("warm_restarts", "sgd", 2, 25, "optim.CosineAnnealingWarmRestarts(opt, 5)",
     lambda o: L.CosineAnnealingWarmRestarts(o, 5), None),
    ("warm_restarts_mult", "sgd", 1, 40,
     "optim.CosineAnnealingWarmRestarts(opt, 3, 2, 0.001)",
     lambda o: L.CosineAnnealingWarmRestarts(o, 3, 2, 0.001), None),
    ("warm_restarts_fractional", "sgd", 1, None,
     "optim.CosineAnnealingWarmRestarts(opt, 4, {eta_min = 0.01})",
     lambda o: L.CosineAnnealingWarmRestarts(o, 4, eta_min=0.01), FRACTIONAL),
    ("warm_restarts_mult_fractional", "sgd", 1, None,
     "optim.CosineAnnealingWarmRestarts(opt, 2, {T_mult = 3})",
     lambda o: L.CosineAnnealingWarmRestarts(o, 2, T_mult=3), FRACTIONAL),
    # the documented recipe: linear warm-up, then cosine (docs/optim.md)
    ("warmup_cosine", "sgd", 2, 30,
     "optim.SequentialLR(opt, {optim.LinearLR(opt, 0.01, 1, 5), "
     "optim.CosineAnnealingLR(opt, 25, 0.001)}, {5})",
     lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.01, 1.0, 5),
                                  L.CosineAnnealingLR(o, 25, 0.001)], [5]), None),
    ("sequential_three", "sgd", 1, 30,
     "optim.SequentialLR(opt, {optim.ExponentialLR(opt, 0.8), optim.StepLR(opt, 3, 0.5), "
     "optim.CosineAnnealingWarmRestarts(opt, 4)}, {4, 12})",
     lambda o: L.SequentialLR(o, [L.ExponentialLR(o, 0.8), L.StepLR(o, 3, 0.5),
                                  L.CosineAnnealingWarmRestarts(o, 4)], [4, 12]), None),
    ("sequential_multistep_lambda", "sgd", 1, 20,
     "optim.SequentialLR(opt, {optim.MultiStepLR(opt, {2, 3}, 0.5), "
     "optim.LambdaLR(opt, function(e) return 1 / (e + 1) end)}, {6})",
     lambda o: L.SequentialLR(o, [L.MultiStepLR(o, [2, 3], 0.5),
                                  L.LambdaLR(o, lambda e: 1 / (e + 1))], [6]), None),
    ("nanogpt_lambda", "sgd", 1, 35, None,
     lambda o: L.LambdaLR(o, nanogpt_lambda(5, 30, 0.1)), None),
]


def momentum_of(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def run(optimizer, ngroups, steps, factory, epochs):
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": 0.1 * (k + 1)}
              for k in range(ngroups)]
    if optimizer == "adam":
        opt = torch.optim.Adam(groups, lr=0.1)
    else:
        opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    s = factory(opt)
    lrs, moms = [[g["lr"] for g in opt.param_groups]], [momentum_of(opt)]
    for k in range(len(epochs) if epochs else steps):
        opt.step()
        if epochs:
            s.step(epochs[k])
        else:
            s.step()
        lrs.append([g["lr"] for g in opt.param_groups])
        moms.append(momentum_of(opt))
    return lrs, moms


def main():
    torch.set_default_dtype(torch.float64)
    cases = []
    for name, optimizer, ngroups, steps, lua_ctor, factory, epochs in CASES:
        lrs, moms = run(optimizer, ngroups, steps, factory, epochs)
        src = NANOGPT_LUA if lua_ctor is None else \
            "function(opt, optim) return %s end" % lua_ctor
        cases.append({"name": name, "optimizer": optimizer, "groups": ngroups,
                      "make": luavalues.Lua(src), "epochs": epochs, "lrs": lrs,
                      "momentum": moms if name.startswith("onecycle") else None})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schedulers_values.lua")
    luavalues.write(path, {"cases": cases}, "make_schedulers_reference.py", torch.__version__,
                    lines=2)
    print("wrote", path)


if __name__ == "__main__":
    main()
