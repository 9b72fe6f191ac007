"""bench/cnn_step_torch.py -- the peer of bench/cnn_step.lua: milliseconds
per training step (forward, cross-entropy, backward, Adam) of the same
network on a random batch [32,1,28,28], same timing method.  Threads: the
count given in EMBER_NUM_THREADS (as bench/run.sh sets it) for
torch.set_num_threads; run it with OPENBLAS_NUM_THREADS=1, PyTorch's best
configuration on this machine.  Exit status 3 without torch.
Output: "# torch <version>", then "cnn_step <milliseconds>".
"""
import os
import sys

from timing import per_call

try:
    import torch
    from torch import nn
except ImportError:
    sys.exit(3)


def main():
    torch.set_num_threads(int(os.environ.get("EMBER_NUM_THREADS", "1")))
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))

    def steps(reps):
        for _ in range(reps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

    step = per_call(steps, 1)
    print("# torch %s" % torch.__version__)
    print("cnn_step %.4f" % (step * 1e3))


if __name__ == "__main__":
    main()
