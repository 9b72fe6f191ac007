"""Write Python values as a Lua chunk: the one writer the reference
generators share (spec/reference/make_*_reference.py).

    import luavalues
    luavalues.write("spec/reference/x_values.lua", value, "make_x_reference.py",
                    torch.__version__)

Floats are written with repr(), which round-trips every double (and so
every float32 widened to a double) exactly, -0.0 included; inf and NaN
become math.huge and 0/0.  Python ints stay Lua integers and floats stay
Lua floats (2.0, not 2); typed() converts where a value's Python type is
not its dtype's.  Tensors become {shape = {...}, data = {...}} with the
values in row-major order.  Dicts become Lua tables with their keys in
sorted order, so a regenerated file differs only where the values do; a
None value in a dict is left out (a Lua table cannot hold nil), in a list
it is written as nil (the positions after it still count).

Two things beyond plain values, for the larger files:
  - Lua(text) is Lua source written as it is: a function the spec calls,
    or a reference to a Shared table;
  - Shared(name) holds values that several entries refer to (an input
    given to many cases), written once each before the `return` as
    NAME[i] = value; add() gives the Lua(...) to put in their place.
write()'s `lines` puts the elements of the outer tables one a line, so that
a diff of a regenerated file shows which case changed.

Some values depend on the BLAS kernels PyTorch runs (matmul, conv), which
OpenBLAS picks by CPU: the last bits differ from an AVX2 machine to an
AVX-512 one.  The committed files were written with OPENBLAS_CORETYPE=Haswell
(the regenerate line of each file says so), which fixes the choice.
"""
import math

# Lua's reserved words: identifiers in Python, but not names in a Lua
# table constructor (they need the ["end"]= form)
LUA_KEYWORDS = frozenset((
    "and", "break", "do", "else", "elseif", "end", "false", "for",
    "function", "goto", "if", "in", "local", "nil", "not", "or", "repeat",
    "return", "then", "true", "until", "while"))


class Lua(str):
    """Lua source that lua() writes as it is (a function, a reference to
    a Shared table's element)."""


class Shared:
    """Values written once each before the `return` as NAME[i] = value and
    referred to by NAME[i] wherever add()'s result is put."""

    def __init__(self, name):
        self.name = name
        self.values = []
        self.refs = {}

    def add(self, value, key=None):
        """The reference to value, added now; with a key, the value added
        under that key the first time, which later calls refer to."""
        if key is not None and key in self.refs:
            return self.refs[key]
        self.values.append(value)
        ref = Lua("%s[%d]" % (self.name, len(self.values)))
        if key is not None:
            self.refs[key] = ref
        return ref


def _is_float_dtype(dtype):
    name = str(dtype).replace("torch.", "")
    return name.startswith(("float", "bfloat", "half", "double"))


def typed(v, dtype):
    """v (a number, or a list of them, nested or not) as the Python type
    of dtype's elements, so that lua() writes it as that dtype's values
    are: bool for bool, float for floating dtypes, int otherwise (an int
    dtype's value must be a whole number).  dtype is a torch dtype or its
    name ("float32", "int64", "bool", ...)."""
    if isinstance(v, (list, tuple)):
        return [typed(e, dtype) for e in v]
    name = str(dtype).replace("torch.", "")
    if name == "bool":
        return bool(v)
    if _is_float_dtype(name):
        return float(v)
    assert v == int(v), "luavalues.typed: %r is not a whole number" % (v,)
    return int(v)


def _key(k):
    if isinstance(k, str) and k.isidentifier() and k not in LUA_KEYWORDS:
        return k
    return "[%s]" % lua(k)


def lua(v, lines=0, indent=""):
    """A Lua expression for v (None, bool, int, float, str, list, tuple,
    dict, Lua, or a torch tensor).  Lists and dicts in the outer `lines`
    levels are written one element a line, indented from `indent`."""
    if isinstance(v, Lua):
        return str(v)
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "0/0"
        if math.isinf(v):
            return "math.huge" if v > 0 else "-math.huge"
        r = repr(v)
        assert float(r) == v
        return r
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    inner = indent + "  "
    if isinstance(v, (list, tuple)):
        items = [lua(e, lines - 1, inner) for e in v]
    elif isinstance(v, dict):
        items = ["%s=%s" % (_key(k), lua(v[k], lines - 1, inner))
                 for k in sorted(v) if v[k] is not None]
    elif hasattr(v, "detach"):     # a torch tensor
        return lua(tensor(v), lines, indent)
    else:
        raise TypeError("luavalues: cannot write %r" % (v,))
    if lines > 0 and items:
        return "{\n" + "".join(inner + e + ",\n" for e in items) + indent + "}"
    return "{" + ",".join(items) + "}"


def flat(t):
    """A tensor's values in row-major order as Python numbers (floats for
    floating dtypes, ints, bools)."""
    t = t.detach()
    data = t.reshape(-1).tolist()
    if t.dtype.is_floating_point:
        data = [float(x) for x in data]
    return data


def tensor(t, **fields):
    """{shape = ..., data = ...} for tensor t, with any more fields given
    (dtype="float32", int=True, ...)."""
    return dict(fields, shape=list(t.shape), data=flat(t))



def stored(v):
    """v with its tensors as a values file holds them (tensor()), walking
    dicts, lists and tuples: integer tensors (indices, labels) get
    int=true, bool ones dtype="bool", floating ones nothing more.  Tensors
    are known by their detach method: this module does not import torch."""
    if hasattr(v, "detach"):
        name = str(v.dtype).replace("torch.", "")
        if name in ("int64", "int32"):
            return tensor(v, int=True)
        if name == "bool":
            return tensor(v, dtype="bool")
        return tensor(v)
    if isinstance(v, dict):
        return {k: stored(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [stored(x) for x in v]
    return v

def write(path, value, script, version="", notes=(), shared=(), lines=0):
    """Write `return <value>` to path, headed by where it came from and
    the comment lines in notes, after the Shared tables in shared; lines
    as for lua()."""
    head = ["-- Generated by spec/reference/%s%s; do not edit." %
            (script, " with PyTorch " + version if version else ""),
            "-- Regenerate: OPENBLAS_CORETYPE=Haswell /usr/bin/python3 "
            "spec/reference/%s" % script]
    head += ["-- " + n for n in notes]
    for s in shared:
        head.append("local %s = {}" % s.name)
        head += ["%s[%d] = %s" % (s.name, i, lua(e))
                 for i, e in enumerate(s.values, 1)]
    with open(path, "w") as f:
        f.write("\n".join(head) + "\nreturn " + lua(value, lines) + "\n")
