"""bench/timing.py -- the timing method of the Python peers, the same as
bench/timing.lua's: warm up for >= WARM_S seconds (at least `unit` calls
twice), which estimates one call's cost; then NBATCH batches of R calls,
R chosen so a batch lasts >= BATCH_S seconds; the median batch gives the
figure.  Nothing is subtracted.
"""
import statistics
import time

NBATCH, BATCH_S, WARM_S = 5, 0.2, 0.1
clock = time.perf_counter


def per_call(batch, unit=1000):
    """Median seconds per call of batch(reps), which makes `reps` calls;
    `unit` is how many calls one warm-up step makes (1 for slow calls)."""
    t0, calls, spent = clock(), 0, 0.0
    while calls < 2 * unit or spent < WARM_S:
        batch(unit)
        calls += unit
        spent = clock() - t0
    reps = int(BATCH_S / (spent / calls)) + 1
    secs = []
    for _ in range(NBATCH):
        t0 = clock()
        batch(reps)
        secs.append(clock() - t0)
    return statistics.median(secs) / reps


def run_cases(cases, only="", sync=lambda: None):
    """Time each (name, fn) of cases (fn makes one call) and print
    "<name> <ms per call>" a line; `only` keeps the names that start with
    it; `sync` ends every batch (a device's queue)."""
    for name, f in cases:
        if not name.startswith(only):
            continue

        def batch(reps, f=f):
            for _ in range(reps):
                f()
            sync()
        print("%s %.4f" % (name, per_call(batch, 1) * 1e3), flush=True)
