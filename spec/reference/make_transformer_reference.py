#!/usr/bin/python3
"""Reference values for spec/nn/transformer_spec.lua (nn.MultiheadAttention,
nn.TransformerEncoderLayer, nn.TransformerDecoderLayer and the stacks
nn.TransformerEncoder, nn.TransformerDecoder), from PyTorch.

Regenerate from the repository root (with the Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_transformer_reference.py

It writes spec/reference/transformer_values.lua; the spec reads only that
file.

Inputs and weights are drawn from a seeded torch.Generator, rounded to
float32 and written exactly, so the same values load into Ember as float32
or float64; every expected value is computed in float64 from them.  The
modules run with batch_first=True, dropout 0 and in training mode (torch
1.13's encoder layer takes a different "fast path" in eval mode).
Parameters are written under Ember's names: PyTorch's layers.0 is layers.1.

torch 1.13 has no is_causal argument: a case with causal=True gives torch
the explicit causal mask (bool, true above the diagonal) and Ember
is_causal = true (tgt_is_causal for a decoder).

Gradients: of (out * R).sum() [+ (weights * RW).sum()] with respect to
every input and every parameter.
"""
import os
import re

import torch
import torch.nn as tnn

import luavalues

GEN = torch.Generator().manual_seed(20261208)


def randn(*shape, scale=1.0):
    return (torch.randn(*shape, generator=GEN) * scale).float().double()



def ember_name(name):
    """layers.0.linear1.weight -> layers.1.linear1.weight (1-based)."""
    return re.sub(r"^layers\.(\d+)\.", lambda m: "layers.%d." % (int(m.group(1)) + 1), name)


def load_weights(m):
    """Fill m's parameters from GEN (LayerNorm weights near 1); return them
    by Ember name."""
    params = {}
    with torch.no_grad():
        for name, p in m.named_parameters():
            if re.search(r"norm\d?\.weight$", name):
                p.copy_(1 + randn(*p.shape, scale=0.2))
            else:
                p.copy_(randn(*p.shape, scale=0.4))
            params[ember_name(name)] = p
    return params


def causal(L, S):
    """PyTorch MHA's convention: true where a query may NOT attend."""
    return torch.ones(L, S, dtype=torch.bool).triu(1)


def padding(B, S, pad):
    """Key padding mask (B, S): the last pad[b] keys of batch b ignored."""
    m = torch.zeros(B, S, dtype=torch.bool)
    for b, n in enumerate(pad):
        if n:
            m[b, S - n:] = True
    return m


CASES = {}


def run_case(name, kind, m, inputs, call, torch_call, weights=False,
             **extra):
    """m: the torch module; inputs: name -> leaf (order: forward's
    arguments); call: the masks Ember is given (name -> tensor or bool);
    torch_call: a function (m, *inputs) -> out [, weights]."""
    m.train()
    params = load_weights(m)
    args = list(inputs.values())
    r = torch_call(m, *args)
    out, w = (r if weights else (r, None))
    R = randn(*out.shape)
    loss = (out * R).sum()
    RW = None
    if w is not None:
        RW = randn(*w.shape)
        loss = loss + (w * RW).sum()
    loss.backward()
    c = dict(kind=kind, out=out.detach(), R=R, RW=RW,
             weights=None if w is None else w.detach(),
             inputs={k: v.detach() for k, v in inputs.items()},
             ginputs={k: v.grad for k, v in inputs.items() if v.grad is not None},
             params={k: p.detach() for k, p in params.items()},
             gparams={k: p.grad for k, p in params.items()},
             call=call, **extra)
    assert name not in CASES
    CASES[name] = c


def leaf(*shape):
    return randn(*shape).requires_grad_(True)


def mha_case(name, E, h, B, L, S, selfattn=False, kdim=None, vdim=None, bias=True,
             attn_mask=None, kpm=None, is_causal=False, need_weights=False,
             average=True, unbatched=False):
    m = tnn.MultiheadAttention(E, h, dropout=0.0, bias=bias, kdim=kdim, vdim=vdim,
                               batch_first=True)
    lead = () if unbatched else (B,)
    if selfattn:
        inputs = {"x": leaf(*lead, L, E)}
    else:
        inputs = {"q": leaf(*lead, L, E), "k": leaf(*lead, S, kdim or E),
                  "v": leaf(*lead, S, vdim or E)}
    tmask = attn_mask
    if is_causal:
        assert attn_mask is None
        tmask = causal(L, S)
    call = {"attn_mask": attn_mask, "key_padding_mask": kpm,
            "is_causal": True if is_causal else None,
            "need_weights": need_weights, "average_attn_weights": average}

    def fwd(mod, *a):
        q, k, v = (a[0], a[0], a[0]) if selfattn else a
        out, w = mod(q, k, v, key_padding_mask=kpm, attn_mask=tmask,
                     need_weights=need_weights, average_attn_weights=average)
        return (out, w) if need_weights else out

    opts = {"kdim": kdim, "vdim": vdim, "bias": bias}
    run_case(name, "MultiheadAttention", m, inputs, call, fwd, weights=need_weights,
             args=[E, h], opts=opts, selfattn=selfattn)


def enc_layer(d, h, ff, act, norm_first):
    return tnn.TransformerEncoderLayer(d, h, dim_feedforward=ff, dropout=0.0,
                                       activation=act, norm_first=norm_first,
                                       batch_first=True)


def dec_layer(d, h, ff, act, norm_first):
    return tnn.TransformerDecoderLayer(d, h, dim_feedforward=ff, dropout=0.0,
                                       activation=act, norm_first=norm_first,
                                       batch_first=True)


def encoder_case(name, d, h, ff, act, norm_first, B, L, src_mask=None, kpm=None,
                 is_causal=False, layers=None):
    layer = enc_layer(d, h, ff, act, norm_first)
    m = layer if layers is None else tnn.TransformerEncoder(
        layer, layers, norm=tnn.LayerNorm(d))
    inputs = {"src": leaf(B, L, d)}
    tmask = causal(L, L) if is_causal else src_mask
    if layers is None:
        call = {"src_mask": src_mask, "src_key_padding_mask": kpm,
                "is_causal": True if is_causal else None}

        def fwd(mod, src):
            return mod(src, src_mask=tmask, src_key_padding_mask=kpm)
    else:
        call = {"mask": src_mask, "src_key_padding_mask": kpm,
                "is_causal": True if is_causal else None}

        def fwd(mod, src):
            return mod(src, mask=tmask, src_key_padding_mask=kpm)
    opts = {"dim_feedforward": ff, "dropout": 0.0, "activation": act,
            "norm_first": norm_first}
    run_case(name, "TransformerEncoder" if layers else "TransformerEncoderLayer", m, inputs,
             call, fwd, args=[d, h], opts=opts, num_layers=layers)


def decoder_case(name, d, h, ff, act, norm_first, B, L, S, tgt_causal=False,
                 memory_mask=None, tgt_kpm=None, memory_kpm=None, layers=None):
    layer = dec_layer(d, h, ff, act, norm_first)
    m = layer if layers is None else tnn.TransformerDecoder(
        layer, layers, norm=tnn.LayerNorm(d))
    inputs = {"tgt": leaf(B, L, d), "memory": leaf(B, S, d)}
    call = {"tgt_is_causal": True if tgt_causal else None, "memory_mask": memory_mask,
            "tgt_key_padding_mask": tgt_kpm, "memory_key_padding_mask": memory_kpm}

    def fwd(mod, tgt, memory):
        return mod(tgt, memory, tgt_mask=causal(L, L) if tgt_causal else None,
                   memory_mask=memory_mask, tgt_key_padding_mask=tgt_kpm,
                   memory_key_padding_mask=memory_kpm)
    opts = {"dim_feedforward": ff, "dropout": 0.0, "activation": act,
            "norm_first": norm_first}
    run_case(name, "TransformerDecoder" if layers else "TransformerDecoderLayer", m, inputs,
             call, fwd, args=[d, h], opts=opts, num_layers=layers)


def main():
    torch.set_default_dtype(torch.float64)
    B, L, S = 2, 4, 5
    # MultiheadAttention
    mha_case("mha_cross", 8, 2, B, L, S)
    mha_case("mha_self_weights", 8, 2, B, L, L, selfattn=True, need_weights=True)
    mha_case("mha_masks_per_head", 8, 2, B, L, S, attn_mask=randn(L, S).gt(0.8),
             kpm=padding(B, S, [0, 2]), need_weights=True, average=False)
    mha_case("mha_float_mask_3d", 8, 4, B, L, S, attn_mask=randn(B * 4, L, S),
             kpm=padding(B, S, [1, 0]))
    mha_case("mha_float_mask_weights", 6, 3, B, L, S, attn_mask=randn(L, S),
             need_weights=True)
    mha_case("mha_causal", 8, 2, B, L, L, selfattn=True, is_causal=True)
    mha_case("mha_causal_padding_weights", 8, 2, B, L, L, selfattn=True, is_causal=True,
             kpm=padding(B, L, [0, 1]), need_weights=True)
    mha_case("mha_kdim_vdim", 8, 2, B, L, S, kdim=5, vdim=3, kpm=padding(B, S, [2, 0]))
    mha_case("mha_kdim_vdim_nobias_weights", 6, 2, B, L, S, kdim=4, vdim=7, bias=False,
             need_weights=True)
    mha_case("mha_unbatched", 8, 2, None, L, S, unbatched=True, attn_mask=randn(L, S).gt(1.0),
             need_weights=True)
    # encoder and decoder layers
    for act in ("relu", "gelu"):
        for nf in (False, True):
            tag = "%s_%s" % (act, "norm_first" if nf else "post_norm")
            encoder_case("enc_layer_" + tag, 8, 2, 16, act, nf, B, L,
                         src_mask=randn(L, L) if act == "relu" else None,
                         kpm=padding(B, L, [1, 0]))
            decoder_case("dec_layer_" + tag, 8, 2, 12, act, nf, B, L, S, tgt_causal=True,
                         memory_kpm=padding(B, S, [0, 2]),
                         memory_mask=randn(L, S).gt(1.2) if nf else None)
    encoder_case("enc_layer_causal", 8, 4, 16, "relu", False, B, L, is_causal=True)
    decoder_case("dec_layer_tgt_padding", 6, 3, 10, "gelu", False, B, L, S,
                 tgt_kpm=padding(B, L, [0, 1]))
    # stacks with a final norm
    encoder_case("encoder_2layers", 8, 2, 16, "gelu", True, B, L, kpm=padding(B, L, [0, 2]),
                 layers=2)
    decoder_case("decoder_2layers", 8, 2, 16, "relu", False, B, L, S, tgt_causal=True,
                 memory_kpm=padding(B, S, [1, 0]), layers=2)
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "transformer_values.lua")
    luavalues.write(path, luavalues.stored(CASES), "make_transformer_reference.py", torch.__version__,
                    notes=["Tensors are {shape=, data=} (row-major; masks have dtype=\"bool\"); "
                           "parameters are under Ember's names (layers.1 is PyTorch's "
                           "layers.0)."], lines=1)
    print("wrote %s (%d cases)" % (path, len(CASES)))


if __name__ == "__main__":
    main()
