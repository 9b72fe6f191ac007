#!/usr/bin/python3
"""Reference values for spec/nn/network_spec.lua (run with /usr/bin/python3).

A fixed small network -- Conv2d (no bias: BatchNorm follows), BatchNorm2d, ReLU, MaxPool2d, Flatten,
Dropout (p = 0: off), Linear, ReLU, Linear -- with fixed weights and inputs
(float32).  Recorded: the outputs, the cross-entropy loss, every parameter's
gradient, the BatchNorm running statistics after one step, and the
parameters after three steps of each optimizer.  Targets are written
1-based, as Ember's class indices are.

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_net_reference.py

(it writes spec/reference/net_values.lua).
"""
import torch
from torch import nn

import luavalues

torch.manual_seed(1234)


def make_net():
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.0),
        nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 4))


net = make_net()
init = [p.detach().clone() for p in net.parameters()]
x = torch.randn(6, 1, 4, 4)
y = torch.tensor([0, 3, 1, 2, 3, 0])


def reset(m):
    with torch.no_grad():
        for p, v in zip(m.parameters(), init):
            p.copy_(v)
    bn = m[1]
    bn.reset_running_stats()


def tensor(t):
    return {"shape": list(t.shape), "values": luavalues.flat(t)}


out = {"x": tensor(x), "y": (y + 1).tolist(), "params": [tensor(p) for p in init]}

reset(net)
net.train()
logits = net(x)
loss = nn.functional.cross_entropy(logits, y)
loss.backward()
out["logits"] = tensor(logits)
out["loss"] = float(loss)
out["grads"] = [tensor(p.grad) for p in net.parameters()]
out["running_mean"] = tensor(net[1].running_mean)
out["running_var"] = tensor(net[1].running_var)
net.eval()
with torch.no_grad():
    out["eval_logits"] = tensor(net(x))

optimizers = [
    ("sgd", lambda ps: torch.optim.SGD(ps, lr=0.1)),
    ("sgd_momentum", lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("adam", lambda ps: torch.optim.Adam(ps, lr=0.01)),
    ("adamw", lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1)),
    ("rmsprop", lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.5)),
    ("adagrad", lambda ps: torch.optim.Adagrad(ps, lr=0.1)),
]
out["steps"] = {}
for name, make in optimizers:
    reset(net)
    net.train()
    opt = make(net.parameters())
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    out["steps"][name] = [tensor(p) for p in net.parameters()]
luavalues.write("spec/reference/net_values.lua", out, "make_net_reference.py",
                torch.__version__, lines=2)
