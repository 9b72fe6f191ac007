"""bench/cuda_torch.py -- the PyTorch peer of bench/cuda_bench.lua, on the
same GPU: one training epoch of the DESIGN.md CNN (PyTorch's default init,
Adam lr 1e-3, cross-entropy) at batch sizes 32 and 256, and float32 matmul
GFLOP/s, with the same data, loop and timing as the Ember side:

  python3 bench/cuda_torch.py [--random | --data DIR] [--limit N]
      [--batch-sizes 32,256] [--sizes 1024,2048,4096,8192] [--runs 5]
      [--device cuda|cpu]

Data: the IDX files of DIR (default $EMBER_FASHION_MNIST, else
/usr/share/datasets/fashion-mnist) read with gzip, or with --random (or
when they are missing) uniform random images and labels of the same shape.
The training set goes to the device once; each epoch draws a permutation
on the device and each step gathers its batch there.  TF32 is off
(torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
false), as Ember's default; cuDNN is otherwise as PyTorch configures it.

Epoch: 20 warm-up steps, then one timed epoch, torch.cuda.synchronize()
before each clock reading.  Matmul: torch.matmul on [n,n] float32, each call
allocating its result; the median of --runs runs of k calls (a run >= 0.2 s).

Output (bench/run_gpu.sh parses it):
  # torch <version> <device name>
  # data fashion-mnist DIR | # data random (why)
  epoch_bs<B> <seconds> <images/s>
  matmul_<n> <GFLOP/s>
Exit status 3 when torch cannot be imported, 2 without a CUDA device.
"""
import gzip
import os
import statistics
import struct
import sys
import time

try:
    import torch
    from torch import nn
except ImportError:
    sys.stderr.write("cuda_torch.py: torch is not installed\n")
    sys.exit(3)

N = 60000


def fail(msg):
    sys.stderr.write("cuda_torch.py: %s\n" % msg)
    sys.exit(2)


def int_list(s, what):
    try:
        out = [int(p) for p in s.split(",") if p]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        fail("bad %s '%s'" % (what, s))
    return out


def parse(argv):
    opt = {"random": False, "data": os.environ.get("EMBER_FASHION_MNIST"), "limit": None,
           "batch_sizes": [32, 256], "sizes": [1024, 2048, 4096, 8192], "runs": 5,
           "device": "cuda"}
    i = 0
    while i < len(argv):
        a = argv[i]
        v = argv[i + 1] if i + 1 < len(argv) else None
        if a == "--random":
            opt["random"] = True
            i += 1
            continue
        if v is None:
            fail("incomplete argument '%s'" % a)
        if a == "--data":
            opt["data"] = v
        elif a == "--limit":
            opt["limit"] = int_list(v, "limit")[0]
        elif a == "--batch-sizes":
            opt["batch_sizes"] = int_list(v, "batch sizes")
        elif a == "--sizes":
            opt["sizes"] = int_list(v, "sizes")
        elif a == "--runs":
            opt["runs"] = int_list(v, "runs")[0]
        elif a == "--device" and v in ("cuda", "cpu"):
            opt["device"] = v
        else:
            fail("unknown argument '%s' (see the docstring)" % a)
        i += 2
    return opt


def idx(path):
    """An IDX file (gzipped or not) as a uint8 tensor of its shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def find(d, name):
    for p in (os.path.join(d, name + ".gz"), os.path.join(d, name)):
        if os.path.exists(p):
            return p
    raise FileNotFoundError("neither %s nor %s.gz is in '%s'" % (name, name, d))


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))


def main():
    opt = parse(sys.argv[1:])
    dev = opt["device"]
    if dev == "cuda" and not torch.cuda.is_available():
        fail("no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    def now():
        if dev == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    name = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
    print("# torch %s %s" % (torch.__version__, name.replace(" ", "_")))

    x = y = None
    why = "--random"
    d = opt["data"] or "/usr/share/datasets/fashion-mnist"
    if not opt["random"]:
        try:
            x = idx(find(d, "train-images-idx3-ubyte"))
            y = idx(find(d, "train-labels-idx1-ubyte"))
            if opt["limit"]:
                x, y = x[:opt["limit"]], y[:opt["limit"]]
            x = x.float().div(255).unsqueeze(1)
            y = y.long()
            print("# data fashion-mnist %s (%d images)" % (d, len(x)))
        except (OSError, ValueError, struct.error) as e:
            why = str(e).replace("\n", " ")
            x = y = None
    if x is None:
        n = min(opt["limit"], N) if opt["limit"] else N
        torch.manual_seed(0)
        x = torch.rand(n, 1, 28, 28, device=dev)
        y = torch.randint(0, 10, (n,), device=dev)
        print("# data random (%s) (%d images)" % (why, n))
    print("# device %s" % dev, flush=True)
    x, y = x.to(dev), y.to(dev)
    n = len(x)

    def train_steps(model, adam, bs, steps=None):
        perm = torch.randperm(n, device=dev)
        total = (n + bs - 1) // bs
        steps = min(steps, total) if steps else total
        t0 = now()
        for b in range(steps):
            i = perm[b * bs:(b + 1) * bs]
            xb, yb = x.index_select(0, i), y.index_select(0, i)
            adam.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            adam.step()
        return now() - t0

    for bs in opt["batch_sizes"]:
        torch.manual_seed(42)
        model = cnn().to(dev)
        adam = torch.optim.Adam(model.parameters(), lr=1e-3)
        train_steps(model, adam, bs, 20)
        secs = train_steps(model, adam, bs)
        print("epoch_bs%d %.3f %.0f" % (bs, secs, n / secs), flush=True)
        del model, adam

    del x, y
    if dev == "cuda":
        torch.cuda.empty_cache()
    torch.manual_seed(42)
    for s in opt["sizes"]:
        a = torch.randn(s, s, device=dev)
        b = torch.randn(s, s, device=dev)
        t0 = now()
        for _ in range(2):
            c = torch.matmul(a, b)
        one = max((now() - t0) / 2, 1e-6)
        k = max(1, int(0.2 / one + 0.999))
        rates = []
        for _ in range(opt["runs"]):
            t0 = now()
            for _ in range(k):
                c = torch.matmul(a, b)
            rates.append(2 * s ** 3 * k / (now() - t0) * 1e-9)
        assert c.shape[0] == s
        print("matmul_%d %.1f" % (s, statistics.median(rates)), flush=True)
        del a, b, c


if __name__ == "__main__":
    main()
