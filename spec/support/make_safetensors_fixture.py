"""make_safetensors_fixture.py -- writes spec/support/torch_fixture.safetensors
with PyTorch and the reference implementation (the `safetensors` package),
and prints the values that spec/io/interop_spec.lua keeps inline.

Run once, by hand, where torch and safetensors are installed:
    python3 -m venv --system-site-packages /tmp/st && /tmp/st/bin/pip install safetensors
    /tmp/st/bin/python spec/support/make_safetensors_fixture.py
The specs never need torch: they read the committed file.
"""
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_fixture.safetensors")

torch.manual_seed(0)
conv = torch.nn.Conv2d(2, 3, 2)       # a layer's weights, as a model file holds them
tensors = {
    "conv.weight": conv.weight.detach(),                          # F32 [3,2,2,2]
    "conv.bias": conv.bias.detach(),                              # F32 [3]
    "f64": torch.tensor([0.1, -1e300, 5e-324], dtype=torch.float64),
    "f16": torch.tensor([0.1, -65504.0, 6e-8, float("inf")], dtype=torch.float16),
    "bf16": torch.tensor([0.1, -3.0e38, 1.0], dtype=torch.bfloat16),
    "i64": torch.tensor([[2**62, -(2**63)], [7, -1]], dtype=torch.int64),
    "i32": torch.tensor(-123456, dtype=torch.int32),              # 0-d
    "i16": torch.tensor([-32768, 32767], dtype=torch.int16),
    "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
    "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
    "bool": torch.tensor([[True, False], [False, True]]),
    "empty": torch.zeros(0, 3),
    "transposed": torch.arange(6, dtype=torch.float32).reshape(2, 3).t().contiguous(),
}
save_file(tensors, OUT, metadata={"framework": "torch", "torch": torch.__version__.split("+")[0].split("a")[0]})


def lua(v):
    if isinstance(v, list):
        return "{" + ", ".join(lua(x) for x in v) + "}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "1/0" if v == float("inf") else "-1/0" if v == -float("inf") else repr(v)
    return "math.mininteger" if v == -2**63 else str(v)


# What Ember should read: the values as Ember holds them (F16/BF16 widened
# to float32, small integers to int32), listed flat in row-major order.
for name, t in tensors.items():
    wide = t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
    print("  [%r] = {shape = %s, values = %s}," % (name, lua(list(t.shape)), lua(wide.reshape(-1).tolist())))
