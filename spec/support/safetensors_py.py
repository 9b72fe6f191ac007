"""safetensors_py.py -- a stdlib-only safetensors reader and writer (json, struct, sys), for spec/io/interop_spec.lua.
read FILE: check FILE by the reference implementation's rules and print its tensors and metadata as a Lua table.
write FILE: write a file with several dtypes and metadata, laid out as the reference writer lays it out."""
import json, struct, sys
FMT = {"F64": "d", "F32": "f", "F16": "e", "BF16": "H", "I64": "q", "I32": "i", "I16": "h", "I8": "b", "U8": "B", "BOOL": "?"}
def lua(v):  # a Lua literal: strings as decimal escapes of their UTF-8 bytes, NaN and infinities as expressions
    if isinstance(v, str): return '"' + "".join(chr(c) if c < 128 and chr(c).isalnum() else "\\%03d" % c for c in v.encode()) + '"'
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, float): return "0/0" if v != v else "1/0" if v == float("inf") else "-1/0" if v == -float("inf") else repr(v)
    if isinstance(v, int): return "math.mininteger" if v == -2**63 else str(v)
    if isinstance(v, dict): return "{" + ",".join("[%s]=%s" % (lua(k), lua(x)) for k, x in v.items()) + "}"
    return "{" + ",".join(lua(x) for x in v) + "}"
def read(path):
    b = open(path, "rb").read(); n, = struct.unpack("<Q", b[:8]); data = b[8 + n:]
    assert n <= 100_000_000 and 8 + n <= len(b) and (8 + n) % 8 == 0, "bad header length or unaligned data"
    header = json.loads(b[8:8 + n].decode("utf-8")); meta = header.pop("__metadata__", {}); out, pos = [], 0
    for name, t in sorted(header.items(), key=lambda kv: (kv[1]["data_offsets"], kv[0])):
        (s, e), count, fmt = t["data_offsets"], 1, FMT[t["dtype"]]
        for d in t["shape"]: count *= d
        assert s == pos and e - s == count * struct.calcsize(fmt), "tensor %r: bad data_offsets" % name
        values = list(struct.unpack("<%d%s" % (count, fmt), data[s:e]))
        if t["dtype"] == "BF16": values = [struct.unpack("<f", struct.pack("<I", v << 16))[0] for v in values]  # struct has no bfloat16: the top half of a float32
        out.append({"name": name, "dtype": t["dtype"], "shape": t["shape"], "values": values}); pos = e
    assert pos == len(data), "bytes after the last tensor"
    print("return " + lua({"tensors": out, "metadata": meta}))
def write(path):
    tensors = {"weight": ("F32", [2, 3], [0.5, -1.25, 3.4028234663852886e38, -0.0, 1e-45, float("inf")]),
               "double": ("F64", [3], [0.1, -2.5e-300, float("nan")]), "half": ("F16", [2], [1.5, -65504.0]),
               "ids": ("I64", [3], [2**53 + 1, -2**63, 2**63 - 1]), "count": ("I32", [], [-7]), "small": ("I16", [2], [-32768, 32767]),
               "tiny": ("I8", [2], [-128, 127]), "pixels": ("U8", [2, 2], [0, 255, 1, 128]), "mask": ("BOOL", [3], [True, False, True]),
               "empty": ("F32", [0, 4], [])}
    header, data = {"__metadata__": {"format": "pt", "quoted": "a \"b\" \\ c\nd\te", "unicode": "h\u00e9llo \u2713 \U0001f525"}}, b""
    for name in sorted(tensors, key=lambda k: (-struct.calcsize(FMT[tensors[k][0]]), k)):  # reference order: big elements first
        dt, shape, values = tensors[name]; raw = struct.pack("<%d%s" % (len(values), FMT[dt]), *values)
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}; data += raw
    h = json.dumps(header).encode(); h += b" " * (-len(h) % 8)  # ensure_ascii: non-ASCII as \u escapes; data 8-aligned
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
if __name__ == "__main__":
    {"read": read, "write": write}[sys.argv[1]](sys.argv[2])
