#!/usr/bin/python3
"""Reference values for spec/nn/rnn_spec.lua (nn.RNN, nn.LSTM, nn.GRU and
their cells), from PyTorch.

Regenerate from the repository root (with the Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_rnn_reference.py

It writes spec/reference/rnn_values.lua; the spec reads only that file.

Inputs, initial states and weights are drawn from a seeded torch.Generator,
rounded to float32 and written exactly, so the same values load into Ember
as float32 or float64; every expected value is computed in float64 from
them (the layers run with batch_first=True).  Parameters are written under
Ember's names: PyTorch's weight_ih_l0 is weight_ih_l1 (layer numbers
1-based), the _reverse suffix is kept.

Gradients: of (out * R).sum() + (h_n * RH).sum() [+ (c_n * RC).sum()] with
respect to the input, the initial state and every parameter.
"""
import os
import re

import torch
import torch.nn as tnn

import luavalues

GEN = torch.Generator().manual_seed(20261207)


def randn(*shape, scale=1.0):
    return (torch.randn(*shape, generator=GEN) * scale).float().double()



def ember_name(name):
    """weight_ih_l0 -> weight_ih_l1 (Ember's layer numbers are 1-based)."""
    return re.sub(r"_l(\d+)", lambda m: "_l%d" % (int(m.group(1)) + 1), name)


CASES = {}


def load_weights(m):
    """Fill m's parameters from GEN; return them by Ember name."""
    params = {}
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(randn(*p.shape, scale=0.5))
            params[ember_name(name)] = p
    return params


def seq_case(name, kind, B, L, nin, H, with_state=True, unbatched=False, **opts):
    cls = {"RNN": tnn.RNN, "LSTM": tnn.LSTM, "GRU": tnn.GRU}[kind]
    m = cls(nin, H, batch_first=True, **opts).double()
    params = load_weights(m)
    D = 2 if opts.get("bidirectional") else 1
    layers = opts.get("num_layers", 1)
    xshape = (L, nin) if unbatched else (B, L, nin)
    sshape = (layers * D, H) if unbatched else (layers * D, B, H)
    x = randn(*xshape).requires_grad_(True)
    h0 = randn(*sshape).requires_grad_(True) if with_state else None
    c0 = randn(*sshape).requires_grad_(True) if with_state and kind == "LSTM" else None
    if kind == "LSTM":
        out, (hn, cn) = m(x, (h0, c0) if with_state else None)
    else:
        out, hn = m(x, h0)
        cn = None
    r, rh = randn(*out.shape), randn(*hn.shape)
    loss = (out * r).sum() + (hn * rh).sum()
    rc = None
    if cn is not None:
        rc = randn(*cn.shape)
        loss = loss + (cn * rc).sum()
    loss.backward()
    nl = opts.get("nonlinearity")
    c = dict(kind=kind, input_size=nin, hidden_size=H, num_layers=layers,
             bidirectional=bool(opts.get("bidirectional")), bias=opts.get("bias", True),
             nonlinearity=nl, x=x.detach(), out=out.detach(), hn=hn.detach(),
             cn=None if cn is None else cn.detach(), R=r, RH=rh, RC=rc,
             gx=x.grad, params={k: p.detach() for k, p in params.items()},
             gparams={k: p.grad for k, p in params.items()})
    if with_state:
        c.update(h0=h0.detach(), gh0=h0.grad)
        if c0 is not None:
            c.update(c0=c0.detach(), gc0=c0.grad)
    assert name not in CASES
    CASES[name] = c


def cell_case(name, kind, B, nin, H, with_state=True, unbatched=False, **opts):
    cls = {"RNNCell": tnn.RNNCell, "LSTMCell": tnn.LSTMCell, "GRUCell": tnn.GRUCell}[kind]
    m = cls(nin, H, **opts).double()
    params = load_weights(m)
    x = randn(*((nin,) if unbatched else (B, nin))).requires_grad_(True)
    sshape = (H,) if unbatched else (B, H)
    h0 = randn(*sshape).requires_grad_(True) if with_state else None
    c0 = randn(*sshape).requires_grad_(True) if with_state and kind == "LSTMCell" else None
    if kind == "LSTMCell":
        h1, c1 = m(x, (h0, c0) if with_state else None)
    else:
        h1, c1 = m(x, h0), None
    rh = randn(*h1.shape)
    loss = (h1 * rh).sum()
    rc = None
    if c1 is not None:
        rc = randn(*c1.shape)
        loss = loss + (c1 * rc).sum()
    loss.backward()
    c = dict(kind=kind, input_size=nin, hidden_size=H, bias=opts.get("bias", True),
             nonlinearity=opts.get("nonlinearity"), x=x.detach(), hn=h1.detach(),
             cn=None if c1 is None else c1.detach(), RH=rh, RC=rc, gx=x.grad,
             params={k: p.detach() for k, p in params.items()},
             gparams={k: p.grad for k, p in params.items()})
    if with_state:
        c.update(h0=h0.detach(), gh0=h0.grad)
        if c0 is not None:
            c.update(c0=c0.detach(), gc0=c0.grad)
    assert name not in CASES
    CASES[name] = c


def main():
    torch.set_default_dtype(torch.float64)
    for kind in ("LSTM", "GRU", "RNN"):
        k = kind.lower()
        seq_case(k + "_1layer", kind, 3, 5, 4, 3)
        seq_case(k + "_2layer_bidir", kind, 2, 4, 3, 3, num_layers=2, bidirectional=True)
        seq_case(k + "_nostate_nobias", kind, 2, 3, 2, 4, with_state=False, bias=False)
        seq_case(k + "_unbatched", kind, None, 4, 3, 2, unbatched=True, num_layers=2)
        cell = kind + "Cell"
        cell_case(cell.lower(), cell, 3, 4, 5)
        cell_case(cell.lower() + "_nostate_nobias", cell, 2, 3, 2, with_state=False, bias=False)
        cell_case(cell.lower() + "_unbatched", cell, None, 3, 2, unbatched=True)
    seq_case("rnn_relu_3layer", "RNN", 2, 3, 2, 3, num_layers=3, nonlinearity="relu")
    cell_case("rnncell_relu", "RNNCell", 2, 3, 4, nonlinearity="relu")
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "rnn_values.lua")
    luavalues.write(path, luavalues.stored(CASES), "make_rnn_reference.py", torch.__version__,
                    notes=["Tensors are {shape=, data=} (row-major); parameters are under "
                           "Ember's names (weight_ih_l1 is PyTorch's weight_ih_l0)."], lines=1)
    print("wrote %s (%d cases)" % (path, len(CASES)))


if __name__ == "__main__":
    main()
