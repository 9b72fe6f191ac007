"""bench/mmap_torch.py MiB TENSORS ROUNDS -- PyTorch's peer of bench/mmap_bench.lua.

Writes the same checkpoint (TENSORS float32 tensors, MiB in all) with
torch.save, then times torch.load(path, mmap=True) in fresh processes and
prints "ok <median seconds> <median RSS growth bytes>".  torch.load's mmap
needs torch >= 2.1 (Debian's python3-torch is 1.13; it has no safetensors
package either): then it prints the reason and exits 0.
"""
import os, subprocess, sys, tempfile, time

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

if len(sys.argv) > 1 and sys.argv[1] == "--child":
    import torch
    r0 = rss(); t0 = time.perf_counter()
    torch.load(sys.argv[2], mmap=True)
    print("%.6f %d" % (time.perf_counter() - t0, rss() - r0))
    sys.exit(0)

try:
    import torch
except ImportError as e:
    print("torch is not importable (%s)" % e); sys.exit(0)
major, minor = (int(x) for x in torch.__version__.split(".")[:2])
if (major, minor) < (2, 1):
    print("torch %s has no torch.load(mmap=True) (it needs >= 2.1), and no safetensors package"
          % torch.__version__)
    sys.exit(0)
mib, nt, rounds = (int(a) for a in sys.argv[1:4])
path = os.path.join(tempfile.gettempdir(), "ember_mmap_bench_%d.pt" % mib)
per = mib * 1024 * 1024 // 4 // nt
torch.save({"t%02d" % (i + 1): torch.full((per,), float(i + 1)) for i in range(nt)}, path)
secs, grow = [], []
for _ in range(rounds):
    out = subprocess.run([sys.executable, __file__, "--child", path], capture_output=True, text=True).stdout
    s, g = out.split()
    secs.append(float(s)); grow.append(int(g))
os.remove(path)
secs.sort(); grow.sort()
print("ok %f %d" % (secs[len(secs) // 2], grow[len(grow) // 2]))
