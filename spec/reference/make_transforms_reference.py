#!/usr/bin/python3
"""Reference values for spec/data/transforms_spec.lua (data.transforms),
from PyTorch.

Regenerate (from the repository root, with a Python that has torch):

    /usr/bin/python3 spec/reference/make_transforms_reference.py

It writes spec/reference/transforms_values.lua; the spec only reads it.

torchvision is not needed: RandomRotation is torchvision 0.14's tensor
path written out (F.rotate -> _get_inverse_affine_matrix(-angle) ->
_gen_affine_grid -> grid_sample bilinear, zeros, align_corners=False, with
a channel of ones whose sampled value blends in the fill), at fixed
angles (the spec passes degrees {a, a}).  RandomCrop's reflect padding is
F.pad(mode="reflect"); the spec finds the crop's window in it.

Input: element i (row-major) of the 2 x 3 x 5 x 6 image batch is
sin(i * 0.37) * 3, float32.
"""
import math

import torch
import torch.nn.functional as F

import luavalues


def image():
    n = 2 * 3 * 5 * 6
    return torch.tensor([math.sin(i * 0.37) * 3 for i in range(n)],
                        dtype=torch.float32).view(2, 3, 5, 6)


def rotate(img, angle, fill):
    n, c, h, w = img.shape
    img = img.double()
    a = math.radians(angle)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0],
                          [math.sin(a), math.cos(a), 0.0]], dtype=torch.float64)
    xs = torch.linspace(-w * 0.5 + 0.5, w * 0.5 - 0.5, w, dtype=torch.float64)
    ys = torch.linspace(-h * 0.5 + 0.5, h * 0.5 - 0.5, h, dtype=torch.float64)
    base = torch.empty(h, w, 3, dtype=torch.float64)
    base[..., 0] = xs.view(1, w)
    base[..., 1] = ys.view(h, 1)
    base[..., 2] = 1
    rescaled = theta.t() / torch.tensor([0.5 * w, 0.5 * h], dtype=torch.float64)
    grid = base.view(1, h * w, 3).bmm(rescaled.unsqueeze(0)).view(1, h, w, 2)
    grid = grid.expand(n, h, w, 2)
    both = torch.cat([img, torch.ones(n, 1, h, w, dtype=torch.float64)], 1)
    out = F.grid_sample(both, grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    mask, out = out[:, -1:], out[:, :-1]
    return (out * mask + (1.0 - mask) * fill).float()


def main():
    x = image()
    values = {
        "input": luavalues.tensor(x),
        "reflect2": luavalues.tensor(F.pad(x, (2, 2, 2, 2), mode="reflect")),
        "rotations": [
            {"angle": a, "fill": f, "out": luavalues.tensor(rotate(x, a, f))}
            for a, f in ((30.0, 0.0), (-7.5, 0.0), (12.0, 0.5), (90.0, 0.0))
        ],
    }
    luavalues.write("spec/reference/transforms_values.lua", values,
                    "make_transforms_reference.py", torch.__version__)


if __name__ == "__main__":
    main()
