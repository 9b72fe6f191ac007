"""bench/loader_torch.py -- the image-folder case of bench/loader_bench.lua
in PyTorch: NIMG 64x64 PNGs written to a temporary folder (PIL), a
Dataset that opens each with PIL and resizes to 32x32 (bilinear), batch
64, shuffled, RandomCrop(32, padding 4) + horizontal flip + Normalize
written with torch ops (no torchvision here), and the same small CNN's
forward and backward on 1 thread, with DataLoader num_workers 0 and 1
(prefetch_factor 2).

  /usr/bin/python3 bench/loader_torch.py   (EMBER_BENCH_IMAGES: NIMG)
"""
import os
import random
import shutil
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

NIMG = int(os.environ.get("EMBER_BENCH_IMAGES", "2000"))
B = 64


class Folder(torch.utils.data.Dataset):
    def __init__(self, root):
        self.items = []
        for c, name in enumerate(sorted(os.listdir(root))):
            for f in sorted(os.listdir(os.path.join(root, name))):
                self.items.append((os.path.join(root, name, f), c))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, y = self.items[i]
        im = Image.open(path).convert("RGB").resize((32, 32), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1)
        # RandomCrop(32, padding=4), RandomHorizontalFlip, Normalize
        x = nn.functional.pad(x, (4, 4, 4, 4))
        i0, j0 = random.randint(0, 8), random.randint(0, 8)
        x = x[:, i0:i0 + 32, j0:j0 + 32]
        if random.random() < 0.5:
            x = x.flip(2)
        return (x - 0.5) / 0.25, y


def main():
    torch.set_num_threads(1)
    root = tempfile.mkdtemp()
    rng = np.random.default_rng(1)
    for c in (0, 1):
        os.mkdir(os.path.join(root, "c%d" % c))
    yy, xx = np.mgrid[0:64, 0:64]
    for k in range(1, NIMG + 1):
        px = np.stack([(xx * 4 + k) % 256, (yy * 4 + 3 * k) % 256,
                       ((xx + yy) * 2 + rng.integers(0, 32, (64, 64))) % 256], 2)
        Image.fromarray(px.astype(np.uint8)).save(os.path.join(root, "c%d/%05d.png" % (k % 2, k)))
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(32 * 8 * 8, 2))
    ds = Folder(root)
    nb = (len(ds) + B - 1) // B

    def epoch(workers, compute):
        kw = {"num_workers": workers}
        if workers:
            kw["prefetch_factor"] = 2
        loader = torch.utils.data.DataLoader(ds, batch_size=B, shuffle=True, **kw)
        t0 = time.perf_counter()
        for xb, yb in loader:
            if compute:
                nn.functional.cross_entropy(model(xb), yb).backward()
                model.zero_grad()
        return time.perf_counter() - t0

    epoch(0, True)
    alone = epoch(0, False)
    xb, yb = next(iter(torch.utils.data.DataLoader(ds, batch_size=B)))
    t0 = time.perf_counter()
    for _ in range(nb):
        nn.functional.cross_entropy(model(xb), yb).backward()
        model.zero_grad()
    steps = time.perf_counter() - t0
    e0, e1 = epoch(0, True), epoch(1, True)
    print("# torch %s: %d PNGs 64x64 -> 32x32 (PIL), %d batches of %d, CNN step on 1 thread"
          % (torch.__version__, NIMG, nb, B))
    print("decode+transform alone         %7.1f ms per batch" % (alone * 1000 / nb))
    print("CNN steps alone                %7.1f ms per batch" % (steps * 1000 / nb))
    print("epoch, num_workers 0           %7.1f ms per batch" % (e0 * 1000 / nb))
    print("epoch, num_workers 1           %7.1f ms per batch  (%.2fx)" % (e1 * 1000 / nb, e0 / e1))
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
