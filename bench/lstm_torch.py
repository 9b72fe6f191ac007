"""bench/lstm_torch.py -- the peer of bench/lstm_bench.lua: milliseconds per
training step (forward, cross-entropy, backward, zeroing the gradients) of
char-rnn's default model, Embedding(65, 128) -> 2-layer LSTM(128, 128,
batch_first) -> Linear(128, 65), on a random batch of 50 sequences of 50,
same timing method.  Threads: EMBER_NUM_THREADS (as bench/run.sh sets it)
for torch.set_num_threads; run it with OPENBLAS_NUM_THREADS=1.  Exit
status 3 without torch.  Output: "# torch <version>", "lstm_step <ms>".
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
    V, E, H, B, L = 65, 128, 128, 50, 50
    emb, lstm, head = nn.Embedding(V, E), nn.LSTM(E, H, 2, batch_first=True), nn.Linear(H, V)
    params = list(emb.parameters()) + list(lstm.parameters()) + list(head.parameters())
    x, y = torch.randint(0, V, (B, L)), torch.randint(0, V, (B * L,))

    def steps(reps):
        for _ in range(reps):
            for p in params:
                p.grad = None
            out, _ = lstm(emb(x))
            nn.functional.cross_entropy(head(out).reshape(B * L, V), y).backward()

    step = per_call(steps, 1)
    print("# torch %s" % torch.__version__)
    print("lstm_step %.4f" % (step * 1e3))


if __name__ == "__main__":
    main()
