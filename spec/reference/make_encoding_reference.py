"""Reference values for issue 17's encoding group (spec/core/encoding_spec.lua):
one_hot, bincount, histc, bucketize, searchsorted, from PyTorch.
Ember is 1-based: labels and bin values are PyTorch's + 1 in the input, and
bucketize/searchsorted results are PyTorch's + 1 (the spec adds nothing: the
stored inputs and outputs are already Ember's).
Run: OPENBLAS_CORETYPE=Haswell /usr/bin/python3
spec/reference/make_encoding_reference.py (it writes
spec/reference/encoding_values.lua)."""
import torch

import luavalues

def tens(t):
    return luavalues.tensor(t, dtype=str(t.dtype).replace("torch.", ""))

cases = []
def add(fn, args, out, opts=None):
    cases.append((fn, args, out, opts or {}))

# one_hot: Ember labels = PyTorch labels + 1
for lab, nc in [([[0, 2], [1, 0]], -1), ([3, 0, 1], 5), ([0], 1)]:
    x = torch.tensor(lab)
    add("one_hot", [tens(x + 1), nc], tens(torch.nn.functional.one_hot(x, nc)))
# bincount: Ember values = PyTorch values + 1; PyTorch's bin 0 (never hit) dropped
for vals, ml, w in [([0, 2, 2, 4], 0, None), ([1], 5, None), ([0, 0, 1, 3], 2, [0.5, 0.25, 2.0, -1.0]),
                    ([2, 1, 1], 0, [1.5, 2.5, 3.5])]:
    x = torch.tensor(vals) + 1
    for dt in ([torch.float32, torch.float64] if w else [None]):
        wt = torch.tensor(w, dtype=dt) if w else None
        r = torch.bincount(x, weights=wt, minlength=ml + 1)[1:]
        if wt is not None:
            r = r.to(dt)
        add("bincount", [tens(x), ml, tens(wt) if wt is not None else None], tens(r))
# histc
for data, bins, lo, hi in [([1.0, 2.0, 1.0, 4.0], 4, 0.0, 4.0), ([1.0, 2.0, 3.0], 3, 0.0, 0.0),
                           ([-1.0, 0.5, 2.5, 3.0, 10.0], 5, 0.0, 3.0), ([2.0, 2.0], 4, 0.0, 0.0),
                           ([0.1, 0.2, 0.3, 0.7, 0.9, 1.0], 10, 0.0, 1.0)]:
    for dt in (torch.float32, torch.float64):
        x = torch.tensor(data, dtype=dt)
        add("histc", [tens(x), bins, lo, hi], tens(torch.histc(x, bins, lo, hi)))
# bucketize
for data, bnd in [([1, 3, 5, 7, 0], [1, 3, 5]), ([[0.5, 2.0], [6.0, 3.0]], [1.0, 2.0, 3.0, 4.0])]:
    for right in (False, True):
        x, b = torch.tensor(data), torch.tensor(bnd)
        add("bucketize", [tens(x), tens(b)], tens(torch.bucketize(x, b, right=right) + 1), {"right": right})
# searchsorted
for s, v in [([1, 3, 5, 7, 9], [[3, 6, 9], [1, 0, 10]]), ([[1, 3, 5], [2, 4, 6]], [[3, 6], [1, 4]]),
             ([1.0, 2.0, 2.0, 2.0, 3.0], [2.0, 2.5])]:
    for right in (False, True):
        st, vt = torch.tensor(s), torch.tensor(v)
        add("searchsorted", [tens(st), tens(vt)], tens(torch.searchsorted(st, vt, right=right) + 1), {"right": right})

luavalues.write("spec/reference/encoding_values.lua",
                [{"fn": fn, "args": args, "n": len(args), "out": out, "opts": opts}
                 for fn, args, out, opts in cases],
                "make_encoding_reference.py", torch.__version__, lines=1)
