"""bench/dist_torch.py -- the PyTorch peer of bench/allreduce.lua and
bench/dist_epoch.lua (issue 8): torch.distributed over gloo (Debian's
PyTorch 1.13 has no MPI backend).

  mpirun -np W /usr/bin/python3 bench/dist_torch.py allreduce [FLOATS [WARM [NBATCH [REPS]]]]
  mpirun -np W /usr/bin/python3 bench/dist_torch.py cnn [BATCH [WARMUP [STEPS [CHUNKS]]]]

Processes: started by mpirun, which only launches them; the rank and world
size come from OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE (else RANK /
WORLD_SIZE, else a world of one), and the processes meet through a file
store (init_method file://): BENCH_TORCH_STORE names the file (it must not
exist yet; bench/run.sh gives each launch a fresh one), else one in the
temporary directory named after the Open MPI job.  Gloo talks over the
loopback interface (GLOO_SOCKET_IFNAME=lo unless set): nothing leaves the
machine.  One thread per process: torch.set_num_threads(1), with
OPENBLAS_NUM_THREADS=1 (set here before torch loads, unless the caller
set it).

allreduce: dist.all_reduce(t) (sum) on a float32 tensor of FLOATS zeros
(default 25,000,000: 100 MB), with bench/allreduce_c.c's method and
output: WARM untimed calls (default 3), NBATCH batches (default 9) of REPS
calls (default 1), each after a barrier, a batch's time the slowest rank's
(an all-reduce of the times with MAX), the median batch / REPS; algbw =
bytes / t, busbw = algbw * 2 (W-1) / W (the NCCL-tests convention), GB =
10^9 bytes.  Output: "allreduce_ms", "algbw_gbs", "busbw_gbs".

cnn: bench/dist_epoch.lua's work and timing, step for step:
  - data: the 60,000 Fashion-MNIST training images from Debian's gzipped
    IDX files as float32 [60000,1,28,28] in [0,1] (what data.fashion_mnist
    gives Ember), all of them on every rank; a DistributedSampler
    (shuffle, seed 0, set_epoch per epoch) gives each rank its shard, and
    batches of BATCH (default 32) per rank are taken by indexing the
    tensors with it (a DataLoader would collate sample by sample: slower,
    and would flatter Ember);
  - model: the same network, PyTorch's default initialisation, seed 0, in
    torch.nn.parallel.DistributedDataParallel (default options: 25 MB
    buckets, buffers broadcast); Adam, lr 1e-3;
  - loop: zero_grad, cross_entropy, backward (which all-reduces), step;
  - timing: WARMUP untimed steps (default 50), then STEPS (default 300) in
    CHUNKS slices (default 4), each between two barriers, on rank 0's
    time.perf_counter; a slice's rate is W x this rank's images over its
    time; the median slice's rate.
  Output: "images_s", "spread" (fastest slice / slowest), "step_ms".
Exit status 3 when torch cannot be imported.
"""
import os
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # before torch loads OpenBLAS
os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")

try:
    import torch
    import torch.distributed as dist
    from torch import nn
except ImportError:
    sys.exit(3)

# the data reader and the CNN of the single-process peer (bench/epoch_torch.py)
from epoch_torch import model_of, read_idx  # noqa: E402

USAGE = ("usage: dist_torch.py allreduce [FLOATS [WARM [NBATCH [REPS]]]] | "
         "dist_torch.py cnn [BATCH [WARMUP [STEPS [CHUNKS]]]]")


def fail(msg):
    sys.exit("dist_torch.py: %s; %s" % (msg, USAGE))


def int_arg(i, name, minimum, default):
    if len(sys.argv) <= i:
        return default
    try:
        v = int(sys.argv[i])
    except ValueError:
        v = None
    if v is None or v < minimum:
        fail("%s must be an integer >= %d, got '%s'" % (name, minimum, sys.argv[i]))
    return v


def env_int(*names, default):
    for n in names:
        if n in os.environ:
            return int(os.environ[n])
    return default


def join():
    """Join the job: (rank, world size), 0-based rank."""
    rank = env_int("OMPI_COMM_WORLD_RANK", "RANK", default=0)
    world = env_int("OMPI_COMM_WORLD_SIZE", "WORLD_SIZE", default=1)
    store = os.environ.get("BENCH_TORCH_STORE")
    if not store:
        job = os.environ.get("OMPI_MCA_ess_base_jobid") or os.environ.get("PMIX_NAMESPACE")
        store = os.path.join(tempfile.gettempdir(),
                             "ember-bench-gloo-%s" % (job or os.getpid()))
    dist.init_process_group("gloo", init_method="file://" + store, rank=rank,
                            world_size=world)
    return rank, world


def median(xs):
    """The lower middle value, as bench/timing.lua takes it."""
    xs = sorted(xs)
    return xs[(len(xs) - 1) // 2]


def bench_allreduce(rank, world):
    n = int_arg(2, "FLOATS", 1, 25000000)
    warm = int_arg(3, "WARM", 0, 3)
    nbatch = int_arg(4, "NBATCH", 1, 9)
    reps = int_arg(5, "REPS", 1, 1)
    x = torch.zeros(n)
    for _ in range(warm):
        dist.all_reduce(x)
    secs = []
    for _ in range(nbatch):
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(reps):
            dist.all_reduce(x)
        secs.append(time.perf_counter() - t0)
    t = torch.tensor(secs, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)     # each batch: the slowest rank's
    t = median(t.tolist()) / reps
    if rank == 0:
        algbw = n * 4 / t * 1e-9
        print("# torch %s, gloo" % torch.__version__)
        print("# torch ranks %d: dist.all_reduce (sum, gloo) of a float32 tensor of %d "
              "elements (%.1f MB), warm-up %d calls, %d batches of %d call(s) each after a "
              "barrier, median batch (slowest rank) per call" % (world, n, n * 4e-6, warm,
                                                                 nbatch, reps))
        print("allreduce_ms %.4g\nalgbw_gbs %.3f\nbusbw_gbs %.3f"
              % (t * 1e3, algbw, algbw * 2 * (world - 1) / world))


def bench_cnn(rank, world):
    bs = int_arg(2, "BATCH", 1, 32)
    warmup = int_arg(3, "WARMUP", 0, 50)
    steps = int_arg(4, "STEPS", 1, 300)
    chunks = min(int_arg(5, "CHUNKS", 1, 4), steps)
    torch.manual_seed(0)
    x = read_idx("train-images-idx3-ubyte.gz").unsqueeze(1).float().div_(255)
    y = read_idx("train-labels-idx1-ubyte.gz").long()
    ntrain = x.shape[0]

    net = model_of("cnn")
    model = nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = torch.utils.data.DistributedSampler(range(ntrain), num_replicas=world,
                                                  rank=rank, shuffle=True, seed=0)
    cross_entropy = nn.functional.cross_entropy
    state = {"batches": None, "loss": None, "epoch": 0}

    def epoch():
        sampler.set_epoch(state["epoch"])
        state["epoch"] += 1
        idx = torch.tensor(list(iter(sampler)))
        for i in range(0, len(idx), bs):
            b = idx[i:i + bs]
            yield x[b], y[b]

    def train(n):
        """n steps, a new epoch whenever one runs out; the images seen."""
        seen = 0
        for _ in range(n):
            batch = next(state["batches"], None) if state["batches"] else None
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
        train(warmup)
    rates, done = [], 0
    for c in range(1, chunks + 1):
        n = steps * c // chunks - done      # the slices differ by one step at most
        dist.barrier()
        t0 = time.perf_counter()
        seen = train(n)
        dist.barrier()
        rates.append(seen * world / (time.perf_counter() - t0))
        done += n
    final = state["loss"].item()
    if final != final or final == float("inf"):
        sys.exit("dist_torch.py: the loss diverged: %s" % final)
    rate = median(rates)
    if rank == 0:
        print("# torch %s, gloo" % torch.__version__)
        print("# torch cnn ddp ranks %d, batch %d per rank, threads %d "
              "(OPENBLAS_NUM_THREADS=%s): warm-up %d steps, timed %d steps in %d slices "
              "between barriers, median slice"
              % (world, bs, torch.get_num_threads(), os.environ.get("OPENBLAS_NUM_THREADS"),
                 warmup, steps, chunks))
        print("# loss %.4f" % final)
        print("images_s %.1f\nspread %.3f\nstep_ms %.3f"
              % (rate, max(rates) / min(rates), bs * world / rate * 1e3))


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else None
    if mode not in ("allreduce", "cnn"):
        fail("expected allreduce or cnn, got '%s'" % mode)
    torch.set_num_threads(1)
    rank, world = join()
    try:
        (bench_allreduce if mode == "allreduce" else bench_cnn)(rank, world)
        sys.stdout.flush()
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
