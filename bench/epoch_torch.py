"""bench/epoch_torch.py -- the peer of bench/epoch.lua: seconds per
training epoch of the same network (the Fashion-MNIST CNN of DESIGN.md,
or the 784-128-64-10 ReLU MLP) in PyTorch, and the process's peak
resident memory.

  /usr/bin/python3 bench/epoch_torch.py cnn|mlp BATCH THREADS [WARMUP [STEPS [CHUNKS]]]

The same work as the Ember side, step for step:
  - data: the first 54,000 images of Debian's Fashion-MNIST training set,
    read from the gzipped IDX files with gzip (straight into one buffer)
    and kept as stored, uint8 [54000,1,28,28] (as torchvision keeps them),
    and int64 labels; each batch converted to float32 in [0,1] as it is
    drawn (BENCH_DATA names another folder);
  - model: PyTorch's default initialisation (the scheme Ember's nn uses),
    seed 0; Adam, lr 1e-3;
  - loop: a new torch.randperm each epoch, batches x[idx], y[idx] (the
    last batch of an epoch partial), zero_grad, cross_entropy, backward,
    step -- the fast path a PyTorch user writes for in-memory tensors
    (a DataLoader over a TensorDataset collates sample by sample and is
    slower; using it would flatter Ember).
Timing: the same as epoch.lua's (WARMUP untimed steps, default 200; then
STEPS, default 400, 0 for one whole epoch, from the start of a fresh epoch,
in CHUNKS slices, default 8; the median slice's images/s scaled to 54,000
images; the spread of the middle half of the slices), on time.perf_counter.
Threads: torch.set_num_threads(THREADS), with OPENBLAS_NUM_THREADS=1 in
the environment (set here before torch loads, unless the caller set it):
PyTorch's best configuration on this machine (issue 6: OpenBLAS's pool
and PyTorch's OpenMP pool both on the two cores make its MLP ~5x slower).
Output: comment lines (versions, what was measured, the final loss), then
"epoch", "images_s", "spread" and "rss_mib" as epoch.lua writes them.
Exit status 3 when torch cannot be imported.
"""
import gzip
import os
import resource
import struct
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # before torch loads OpenBLAS

try:
    import torch
    from torch import nn
except ImportError:
    sys.exit(3)

DIR = os.environ.get("BENCH_DATA", "/usr/share/datasets/fashion-mnist/")
NTRAIN = 54000
USAGE = "usage: epoch_torch.py cnn|mlp BATCH THREADS [WARMUP [STEPS [CHUNKS]]]"


def fail(msg):
    sys.exit("epoch_torch.py: %s; %s" % (msg, USAGE))


def int_arg(i, name, minimum, default=None):
    if len(sys.argv) <= i:
        if default is None:
            fail("%s is missing" % name)
        return default
    try:
        v = int(sys.argv[i])
    except ValueError:
        v = None
    if v is None or v < minimum:
        fail("%s must be an integer >= %d, got '%s'" % (name, minimum, sys.argv[i]))
    return v


def read_idx(name):
    """The uint8 tensor of a gzipped IDX file, read into one buffer."""
    with gzip.open(os.path.join(DIR, name)) as f:
        head = f.read(4)
        if len(head) != 4 or head[2] != 8:
            sys.exit("epoch_torch.py: %s is not a uint8 IDX file" % name)
        ndim = head[3]
        dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        count = 1
        for d in dims:
            count *= d
        buf = bytearray(count)
        if f.readinto(buf) != count:
            sys.exit("epoch_torch.py: %s is truncated" % name)
    return torch.frombuffer(buf, dtype=torch.uint8).reshape(dims)


def model_of(kind):
    if kind == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3), nn.ReLU(),
            nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(),
                         nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def peak_rss_mib():
    """VmHWM of this process, else getrusage's ru_maxrss (KiB on Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else None
    if kind not in ("cnn", "mlp"):
        fail("expected cnn or mlp, got '%s'" % kind)
    bs, threads = int_arg(2, "BATCH", 1), int_arg(3, "THREADS", 1)
    warmup = int_arg(4, "WARMUP", 0, 200)
    steps = int_arg(5, "STEPS", 0, 400)
    chunks = int_arg(6, "CHUNKS", 1, 8)
    per_epoch = (NTRAIN + bs - 1) // bs
    if steps == 0:
        steps = per_epoch
    chunks = min(chunks, steps)

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    # the data: uint8 as stored (the kept part), batches converted as drawn
    images = read_idx("train-images-idx3-ubyte.gz")
    labels = read_idx("train-labels-idx1-ubyte.gz")
    x = images[:NTRAIN].unsqueeze(1)
    y = labels[:NTRAIN].long()
    del images, labels

    model = model_of(kind)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    cross_entropy = nn.functional.cross_entropy
    state = {"batches": None, "loss": None}

    def epoch():
        perm = torch.randperm(NTRAIN)
        for i in range(0, NTRAIN, bs):
            idx = perm[i:i + bs]
            yield x[idx].float().div_(255), y[idx]

    def train(n, fresh):
        """n steps, a new epoch whenever one runs out; the images seen."""
        if fresh or state["batches"] is None:
            state["batches"] = epoch()
        seen = 0
        for _ in range(n):
            batch = next(state["batches"], None)
            if batch is None:
                state["batches"] = epoch()
                batch = next(state["batches"])
            xb, yb = batch
            opt.zero_grad()
            loss = cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            seen += xb.shape[0]
        state["loss"] = loss
        return seen

    if warmup:
        train(warmup, True)
    rates, timed_images, done = [], 0, 0
    for c in range(1, chunks + 1):
        n = steps * c // chunks - done      # the slices differ by one step at most
        t0 = time.perf_counter()
        seen = train(n, c == 1)
        rates.append(seen / (time.perf_counter() - t0))
        timed_images, done = timed_images + seen, done + n
    final = state["loss"].item()
    if final != final or final == float("inf"):
        sys.exit("epoch_torch.py: the loss diverged: %s" % final)

    rates.sort()
    rate = rates[(len(rates) - 1) // 2]     # epoch.lua's median: the lower middle
    q = len(rates) // 4                     # the slices left out at each end
    print("# torch %s" % torch.__version__)
    print("# torch %s batch %d threads %d (OPENBLAS_NUM_THREADS=%s): warm-up %d steps, "
          "timed %d steps (%d images) in %d slices, median slice scaled to %d images"
          % (kind, bs, torch.get_num_threads(), os.environ.get("OPENBLAS_NUM_THREADS"),
             warmup, steps, timed_images, chunks, NTRAIN))
    print("# loss %.4f" % final)
    print("epoch %.3f\nimages_s %.1f\nspread %.3f\nrss_mib %.1f"
          % (NTRAIN / rate, rate, rates[-1 - q] / rates[q], peak_rss_mib()))


if __name__ == "__main__":
    main()
