#!/usr/bin/python3
"""Reference values for spec/nn/nanogpt_port_spec.lua: nanoGPT's model.py
(Karpathy's GPT, transcribed in its structure and names in
spec/reference/nanogpt_model.py, which bench/gpt_torch.py shares) on a tiny
configuration, with deterministic weights, so that the Lua port in
examples/nanogpt/model.lua can be checked number for number.

Regenerate (from the repository root, with a Python that has torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_nanogpt_reference.py

(the Haswell kernels: OpenBLAS picks its kernels by CPU, and the last bits
of a product follow them; see luavalues.py)

Weights: the parameter named `name` (PyTorch's name) holds, at row-major
position j, 0.3 * sin(0.7 * j + phase) with phase = (sum of the name's
bytes mod 97) / 10.  Token ids are 0-based here and 1-based in Ember.
"""
import sys

import torch

sys.path.insert(0, "spec/reference")
import luavalues  # noqa: E402
from nanogpt_model import GPT  # noqa: E402

torch.set_default_dtype(torch.float64)


def fill(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            phase = (sum(name.encode()) % 97) / 10
            j = torch.arange(p.numel(), dtype=torch.float64)
            p.copy_((0.3 * torch.sin(0.7 * j + phase)).view(p.shape))


def main():
    config = dict(block_size=8, vocab_size=13, n_layer=2, n_head=2, n_embd=16, bias=True)
    model = GPT(dict(config))
    fill(model)
    idx = torch.tensor([[3, 1, 4, 1, 5, 9, 2], [6, 5, 3, 5, 8, 9, 7]])
    targets = torch.tensor([[1, 4, 1, 5, 9, 2, 6], [5, 3, 5, 8, 9, 7, -1]])
    logits, loss = model(idx, targets)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    last, _ = model(idx)
    decay, nodecay = model.configure_groups()
    generated = model.generate(idx[:, :3], 9, temperature=0.8, top_k=1)
    model.crop_block_size(4)
    cropped, _ = model(idx[:, :4], targets[:, :4].contiguous())
    out = dict(config=config, idx=idx.tolist(), targets=targets.tolist(),
               logits=logits, loss=loss.item(), grads=grads, last=last,
               num_params=GPT(dict(config)).get_num_params(),
               decay=decay, nodecay=nodecay, generated=generated.tolist(),
               cropped=cropped)
    luavalues.write("spec/reference/nanogpt_values.lua", out,
                    "make_nanogpt_reference.py", torch.__version__)


if __name__ == "__main__":
    main()
