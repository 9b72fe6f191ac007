"""bench/gpt_torch.py -- the peer of bench/gpt_bench.lua and of
examples/char_gpt.lua: nanoGPT's model.py (the transcription in
spec/reference/nanogpt_model.py: its manual attention path, torch 1.13
having no scaled_dot_product_attention) in the example's configuration --
4 layers, 4 heads, 128 wide, block 64, batch 12, no bias, dropout 0,
nanoGPT's initialisation, tied embeddings, AdamW 1e-3 (betas 0.9, 0.99),
weight decay 0.1 on 2-D weights, clipping at 1.0 -- on the same corpus
(every plain-text file of /usr/share/games/fortunes in name order, the %
lines dropped, 90/10 split; examples/char_gpt/fortunes.lua's rule), with
nanoGPT's get_batch and get_lr (100 warm-up steps or a tenth of the run,
cosine to 1e-4).

    /usr/bin/python3 bench/gpt_torch.py step        ms per training step
    /usr/bin/python3 bench/gpt_torch.py step_bf16   the same, the forward under
                                                    torch.autocast("cpu", bfloat16)
    /usr/bin/python3 bench/gpt_torch.py train N E   N steps, then the loss
                                                    on E validation batches
    /usr/bin/python3 bench/gpt_torch.py sample      ms to sample 500 tokens
    /usr/bin/python3 bench/gpt_torch.py attn_mem    peak memory of causal
                                                    attention, L 4096, 1 head

Threads: torch.set_num_threads(EMBER_NUM_THREADS, else the online cores);
run it with OPENBLAS_NUM_THREADS=1 (bench/transformer.sh does).  Exit
status 3 without torch.  Output: "# torch <version>", then "name value"
lines; every mode ends with "rss_kib <VmHWM of the process>".
"""
import math
import os
import statistics
import sys
import time

from timing import per_call

try:
    import numpy as np
    import torch
except ImportError:
    sys.exit(3)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spec", "reference"))
from nanogpt_model import GPT  # noqa: E402

DIR = "/usr/share/games/fortunes"
BATCH, BLOCK = 12, 64
LR, MIN_LR = 1e-3, 1e-4
SAMPLE_RUNS = 3  # a sample of 500 is slow: the median of 3 after a warm-up


def corpus():
    """vocab size, train ids, val ids (numpy uint16, as nanoGPT's prepare.py
    stores them); encoded through numpy so that no list of 2.5M Python ints
    is made (PyTorch's side at its best)."""
    names = sorted(n for n in os.listdir(DIR) if "." not in n)
    parts = []
    for n in names:
        with open(os.path.join(DIR, n), encoding="utf-8") as f:
            t = f.read().replace("\n%\n", "\n\n")
        parts.append(t[2:] if t.startswith("%\n") else t)
    text = "".join(parts)
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    chars = np.unique(cps)  # sorted(set(text)), by code point
    ids = np.searchsorted(chars, cps).astype(np.uint16)
    cut = len(ids) * 9 // 10
    return len(chars), ids[:cut], ids[cut:]


def get_batch(data):
    """nanoGPT's get_batch."""
    ix = torch.randint(len(data) - BLOCK, (BATCH,))
    x = torch.stack([torch.from_numpy((data[i:i + BLOCK]).astype(np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy((data[i + 1:i + 1 + BLOCK]).astype(np.int64)) for i in ix])
    return x, y


def model_of(vocab):
    model = GPT(dict(block_size=BLOCK, vocab_size=vocab, n_layer=4, n_head=4, n_embd=128,
                     bias=False))
    model.init_weights()
    return model


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def train(model, data, steps, opt):
    warmup = min(100, steps // 10)

    def get_lr(it):  # nanoGPT's
        if it < warmup:
            return LR * (it + 1) / (warmup + 1)
        if it > steps:
            return MIN_LR
        ratio = (it - warmup) / max(1, steps - warmup)
        return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (LR - MIN_LR)

    for it in range(steps):
        for g in opt.param_groups:
            g["lr"] = get_lr(it)
        x, y = get_batch(data)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "step"
    torch.set_num_threads(int(os.environ.get("EMBER_NUM_THREADS") or os.cpu_count() or 1))
    torch.manual_seed(1337)
    print("# torch %s threads %d" % (torch.__version__, torch.get_num_threads()))
    if mode == "attn_mem":
        L = 4096
        q, k, v = (torch.randn(1, 1, L, 64, requires_grad=True) for _ in range(3))
        w = torch.randn(1, 1, L, 64)
        hide = torch.ones(L, L, dtype=torch.bool).triu(1)  # nanoGPT's registered buffer
        base = rss_kib()
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(64))
        att = att.masked_fill(hide, float("-inf")).softmax(-1)
        (att @ v).backward(w)
        print("attn_peak_bytes %d" % ((rss_kib() - base) * 1024))
        print("rss_kib %d" % rss_kib())
        return
    vocab, train_data, val_data = corpus()
    model = model_of(vocab)
    opt = model.configure_optimizers(0.1, LR, (0.9, 0.99))
    if mode in ("step", "step_bf16"):
        def steps(reps):
            for _ in range(reps):
                x, y = get_batch(train_data)
                if mode == "step_bf16":
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        _, loss = model(x, y)
                else:
                    _, loss = model(x, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
        print("gpt_%s %.4f" % (mode, per_call(steps, 1) * 1e3))
    elif mode == "train":
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
        e = int(sys.argv[3]) if len(sys.argv) > 3 else 200
        t0 = time.perf_counter()
        train(model, train_data, n, opt)
        secs = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            val = sum(model(*get_batch(val_data))[1].item() for _ in range(e)) / e
        print("train_s %.2f" % secs)
        print("val_loss %.4f" % val)
    elif mode == "sample":
        model.eval()
        start = torch.zeros((1, 1), dtype=torch.long)

        secs = []
        for _ in range(SAMPLE_RUNS + 1):  # the first is a warm-up
            t0 = time.perf_counter()
            model.generate(start, 500, temperature=0.8, top_k=10)
            secs.append(time.perf_counter() - t0)
        print("sample_500 %.4f" % (statistics.median(secs[1:]) * 1e3))
    else:
        sys.exit("gpt_torch.py: unknown mode " + mode)
    print("rss_kib %d" % rss_kib())


if __name__ == "__main__":
    main()
