#!/usr/bin/python3
"""bench/fashion_mnist_torch.py -- the peer of examples/fashion_mnist_cnn.lua
and fashion_mnist_mlp.lua: the same networks, optimizer, batch sizes,
validation split (the last 10%, before shuffling) and epochs in PyTorch on
this machine, from the same Debian files.  Prints seconds per epoch and the
test accuracy, to set beside Ember's (run by hand; figures in bench/NOTES.md).

  /usr/bin/python3 bench/fashion_mnist_torch.py [cnn|mlp] [epochs] [threads]
"""
import os, sys, time
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from epoch_torch import model_of, read_idx   # the IDX reader and the networks


def load(split):
    x = read_idx(split + "-images-idx3-ubyte.gz").float().div(255).unsqueeze(1)
    y = read_idx(split + "-labels-idx1-ubyte.gz").long()
    return x, y


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        hits = sum((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item()
                   for i in range(0, len(x), 1000))
    model.train()
    return hits / len(x)


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "cnn"
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    if len(sys.argv) > 3:
        torch.set_num_threads(int(sys.argv[3]))
    torch.manual_seed(42)
    x, y = load("train")
    xt, yt = load("t10k")
    at = int(len(x) * 0.9)
    x, y, xv, yv = x[:at], y[:at], x[at:], y[at:]
    model, bs = model_of(kind), 32 if kind == "cnn" else 128
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), bs):
            idx_ = perm[i:i + bs]
            opt.zero_grad()
            loss = loss_fn(model(x[idx_]), y[idx_])
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}/{epochs}: {time.perf_counter() - t0:.1f} s, "
              f"val_accuracy {accuracy(model, xv, yv):.4f}", flush=True)
    per_epoch = (time.perf_counter() - start) / epochs
    print(f"pytorch {kind}: {per_epoch:.1f} s per epoch (threads {torch.get_num_threads()}); "
          f"test accuracy: {accuracy(model, xt, yt):.4f}")


if __name__ == "__main__":
    main()
