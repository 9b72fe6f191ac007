#!/usr/bin/python3
"""Reference values for spec/optim/optim_spec.lua, computed with PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_optim_reference.py

It writes spec/reference/optim_values.lua.  The specs only read that file;
they never need PyTorch.

Optimizers: two parameters P[1] (shape [2,3]) and P[2] (shape [4]) start
from fixed values, and five fixed gradients per parameter are fed in turn;
each case records its parameters after every step.  Inputs are
deterministic (sines and cosines) and rounded to float32 first, so that the
float32 and float64 runs of the spec start from exactly these numbers.
PyTorch runs in float64; the spec compares float64 runs to 1e-10 and
float32 runs to 1e-5 (relative, with an absolute floor of 1e-5).

Schedulers: an SGD optimizer (lr 0.1, two groups where a case says so) and
30 scheduler steps; each case records the lr of every group after
construction and after each step.  ReduceLROnPlateau is fed a fixed metric
sequence.  LambdaLR's lambdas are written here twice, in Python and as Lua
source that the data file carries.
"""
import math
import os

import torch

import luavalues

STEPS = 5
SHAPES = [(2, 3), (4,)]


def f32(x):
    return float(torch.tensor(x, dtype=torch.float32))


def param_values(k):
    n = math.prod(SHAPES[k])
    return [f32(1.5 * math.sin(0.7 * i + 1.1 * k + 0.3)) for i in range(n)]


def grad_values(k, step):
    # magnitudes change from step to step so that amsgrad's max matters
    scale = [1.0, 0.3, 2.0, 0.1, 0.5][step]
    n = math.prod(SHAPES[k])
    return [f32(scale * math.cos(0.37 * i + 1.3 * step + 0.5 * k)) for i in range(n)]


# name, optimizer, options (Lua spelling: betas is a list), groups
# (None: P[1] alone; else a list of {params = [indices 1-based], options})
CASES = [
    ("sgd", "SGD", {"lr": 0.1}, None),
    ("sgd_momentum", "SGD", {"lr": 0.1, "momentum": 0.9}, None),
    ("sgd_dampening", "SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3,
                              "weight_decay": 0.01}, None),
    ("sgd_nesterov", "SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True,
                             "weight_decay": 0.1}, None),
    ("sgd_maximize", "SGD", {"lr": 0.1, "momentum": 0.5, "maximize": True}, None),
    ("adam", "Adam", {}, None),
    ("adam_options", "Adam", {"lr": 0.05, "betas": [0.8, 0.99], "eps": 1e-6,
                              "weight_decay": 0.1}, None),
    ("adam_amsgrad", "Adam", {"lr": 0.05, "amsgrad": True}, None),
    ("adam_maximize", "Adam", {"lr": 0.05, "maximize": True}, None),
    ("adamw", "AdamW", {"lr": 0.05}, None),
    ("adamw_amsgrad", "AdamW", {"lr": 0.02, "weight_decay": 0.1, "amsgrad": True}, None),
    ("rmsprop", "RMSprop", {}, None),
    ("rmsprop_momentum", "RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5}, None),
    ("rmsprop_centered", "RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.9,
                                     "weight_decay": 0.05}, None),
    ("adagrad", "Adagrad", {"lr": 0.1}, None),
    ("adagrad_options", "Adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1,
                                    "initial_accumulator_value": 0.5, "eps": 1e-8}, None),
    ("sgd_groups", "SGD", {"lr": 0.05, "momentum": 0.9},
     [{"params": [1], "lr": 0.1}, {"params": [2], "lr": 0.01, "momentum": 0.5}]),
    ("adam_groups", "Adam", {"lr": 0.01},
     [{"params": [1]}, {"params": [2], "lr": 0.1, "amsgrad": True}]),
]


def torch_options(opts):
    out = dict(opts)
    if "betas" in out:
        out["betas"] = tuple(out["betas"])
    return out


def run_case(optimizer, opts, groups):
    params = [torch.tensor(param_values(k), dtype=torch.float64).reshape(SHAPES[k])
              for k in range(len(SHAPES))]
    used = [1] if groups is None else sorted(i for g in groups for i in g["params"])
    if groups is None:
        arg = [params[0]]
    else:
        arg = []
        for g in groups:
            tg = torch_options({k: v for k, v in g.items() if k != "params"})
            tg["params"] = [params[i - 1] for i in g["params"]]
            arg.append(tg)
    opt = getattr(torch.optim, optimizer)(arg, **torch_options(opts))
    history = []
    for step in range(STEPS):
        for i in used:
            params[i - 1].grad = torch.tensor(grad_values(i - 1, step),
                                              dtype=torch.float64).reshape(SHAPES[i - 1])
        opt.step()
        history.append({i: params[i - 1].flatten().tolist() for i in used})
    return history


# Schedulers: name, class, Lua constructor arguments after the optimizer
# (Lua source), Python factory, number of groups, metrics (ReduceLROnPlateau)
METRICS = [1.0, 0.9, 0.85, 0.85, 0.849, 0.86, 0.7, 0.7, 0.71, 0.72, 0.69, 0.695,
           0.7, 0.7, 0.7, 0.5, 0.5, 0.5, 0.5, 0.5, 0.4, 0.45, 0.45, 0.45, 0.45,
           0.45, 0.45, 0.45, 0.45, 0.45]
SCHEDULERS = [
    ("steplr", "StepLR", "3, 0.5", lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5), 1),
    ("steplr_default", "StepLR", "4", lambda o: torch.optim.lr_scheduler.StepLR(o, 4), 1),
    ("multisteplr", "MultiStepLR", "{5, 12, 12, 20}, {gamma = 0.3}",
     lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [5, 12, 12, 20], 0.3), 1),
    ("exponentiallr", "ExponentialLR", "0.9",
     lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9), 2),
    ("cosine", "CosineAnnealingLR", "10, 0.001",
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, 0.001), 1),
    ("cosine_default", "CosineAnnealingLR", "7",
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7), 2),
    ("lambdalr", "LambdaLR", "function(e) return 0.95 ^ e end",
     lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 0.95 ** e), 1),
    ("lambdalr_groups", "LambdaLR",
     "{function(e) return 1 / (1 + e) end, function(e) return e % 3 == 0 and 1 or 0.5 end}",
     lambda o: torch.optim.lr_scheduler.LambdaLR(
         o, [lambda e: 1 / (1 + e), lambda e: 1 if e % 3 == 0 else 0.5]), 2),
    ("plateau", "ReduceLROnPlateau",
     "{patience = 2, factor = 0.5, cooldown = 1, threshold = 0.01}",
     lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(
         o, patience=2, factor=0.5, cooldown=1, threshold=0.01), 1),
    ("plateau_max", "ReduceLROnPlateau",
     "{mode = 'max', patience = 1, factor = 0.3, threshold = 0.05, "
     "threshold_mode = 'abs', min_lr = {0.005, 0.02}}",
     lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(
         o, mode="max", patience=1, factor=0.3, threshold=0.05,
         threshold_mode="abs", min_lr=[0.005, 0.02]), 2),
]
SCHED_STEPS = 30


def metrics_of(name):
    # plateau_max watches a metric that should grow: the same sequence negated
    return [-m for m in METRICS] if name == "plateau_max" else METRICS


def run_scheduler(factory, ngroups, is_plateau, name):
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": 0.1 * (k + 1)}
              for k in range(ngroups)]
    opt = torch.optim.SGD(groups, lr=0.1)
    s = factory(opt)
    lrs = [[g["lr"] for g in opt.param_groups]]
    for k in range(SCHED_STEPS):
        opt.step()
        if is_plateau:
            s.step(metrics_of(name)[k])
        else:
            s.step()
        lrs.append([g["lr"] for g in opt.param_groups])
    return lrs


def main():
    torch.set_default_dtype(torch.float64)
    optimizers = []
    for name, optimizer, opts, groups in CASES:
        optimizers.append({"name": name, "optimizer": optimizer, "options": opts,
                           "expected": run_case(optimizer, opts, groups),
                           "groups": groups})
    schedulers = []
    for name, cls, args, factory, ngroups in SCHEDULERS:
        plateau = cls == "ReduceLROnPlateau"
        schedulers.append({
            "name": name, "scheduler": cls, "groups": ngroups,
            "args": luavalues.Lua("function() return %s end" % args),
            "metrics": metrics_of(name) if plateau else None,
            "lrs": run_scheduler(factory, ngroups, plateau, name)})
    R = {"steps": STEPS,
         "params": [{"shape": list(SHAPES[k]), "data": param_values(k)}
                    for k in range(len(SHAPES))],
         "grads": [[grad_values(k, s) for k in range(len(SHAPES))] for s in range(STEPS)],
         "optimizers": optimizers, "schedulers": schedulers}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim_values.lua")
    luavalues.write(path, R, "make_optim_reference.py", torch.__version__, lines=2)
    print("wrote", path)

if __name__ == "__main__":
    main()
