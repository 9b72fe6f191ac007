-- The ember executable: script runner with lua5.4's options, and the REPL.
local run = require "helpers.run"
local E = run.ember

local function tmpfile(content)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(content)
  f:close()
  return path
end

describe("ember executable", function()
  it("runs a script with arg set as the stock lua does", function()
    local s = tmpfile("print(arg[0] == ..., select('#', ...), arg[1], arg[2], arg[-1] ~= nil)\n" ..
                      "print(ember.ones(2):sum():item())\n")
    local out, rc = run.sh(E .. " " .. s .. " a b")
    os.remove(s)
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("false\t2\ta\tb\ttrue", 1, true), out)
    assert.truthy(out:find("2.0", 1, true), out)
  end)

  it("gives OpenBLAS this processor's kernels when it fell back to its oldest", function()
    -- a coretype the user set is theirs
    local out, rc = run.sh("OPENBLAS_CORETYPE=Haswell " .. E .. [[ -e 'print(os.getenv("OPENBLAS_CORETYPE"))']])
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("Haswell", 1, true), out)
    -- unset: none when OpenBLAS knew the processor, else the AVX-512 or
    -- AVX2 kernels, as the processor has them (ember_blas_better_coretype)
    out, rc = run.sh("env -u OPENBLAS_CORETYPE " .. E ..
                     [[ -e 'print(os.getenv("OPENBLAS_CORETYPE") or "unset", arg[0] ~= nil)']])
    assert.are.equal(0, rc, out)
    local f = io.open("/proc/cpuinfo")
    local flags = f and f:read("a"):match("\nflags%s*:([^\n]*)") or ""
    if f then f:close() end
    local avx512 = true
    for _, x in ipairs({"avx512f", "avx512bw", "avx512vl", "avx512dq"}) do
      avx512 = avx512 and flags:find("%f[%w]" .. x .. "%f[^%w_]") ~= nil
    end
    local want = avx512 and "SkylakeX" or "Haswell"
    local got = out:match("^(%S+)\t")
    assert.is_true(got == "unset" or got == want, out)
    assert.truthy(out:find("\ttrue", 1, true), out)
  end)

  it("has ember preloaded as a global and as a module", function()
    local out, rc = run.sh(E .. [[ -e 'print(ember == require "ember", ember.ones(2, 2))']])
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("true\ttensor([[1., 1.],", 1, true), out)
  end)

  it("-e statements run in order, - reads stdin, -v prints the version", function()
    local out, rc = run.sh(E .. [[ -e 'x = 2' -e 'print(x * 21)']])
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("42", 1, true), out)
    out, rc = run.sh("echo 'print(ember.arange(3):sum():item())' | " .. E .. " -")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("3", 1, true), out)
    out = run.sh(E .. " -v")
    assert.truthy(out:find("Ember", 1, true) and out:find("Lua 5.4", 1, true), out)
  end)

  it("reports errors with a traceback and a non-zero status", function()
    local s = tmpfile("local t = ember.ones(2, 3)\nlocal u = t:matmul(t)\n")
    local out, rc = run.sh(E .. " " .. s)
    os.remove(s)
    assert.are_not.equal(0, rc)
    assert.truthy(out:find("matmul: shapes [2,3] and [2,3] do not align", 1, true), out)
    assert.truthy(out:find("stack traceback", 1, true), out)
    out, rc = run.sh(E .. " /nonexistent/script.lua")
    assert.are_not.equal(0, rc)
    assert.truthy(out:find("cannot open", 1, true), out)
  end)

  it("-i runs the script then reads the REPL: expressions print, errors do not end it", function()
    local s = tmpfile("y = ember.tensor({1, 2, 3})\n")
    local input = tmpfile(table.concat({
      "y:sum()",                   -- an expression prints without return
      "function f(a)",             -- an unfinished chunk continues
      "  return a * 2",
      "end",
      "f(21)",
      "error('boom')",             -- an error is shown, the REPL goes on
      "y[2]",
      "1, 'two'",
    }, "\n") .. "\n")
    local out, rc = run.sh(E .. " -i " .. s .. " < " .. input)
    os.remove(s); os.remove(input)
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("tensor(6.)", 1, true), out)
    assert.truthy(out:find("42", 1, true), out)
    assert.truthy(out:find("boom", 1, true), out)
    assert.truthy(out:find("2.0", 1, true), out)
    assert.truthy(out:find("[1] 1\n[2] two\n", 1, true), out)
  end)

  -- Feeds `lines` to `ember -i` and returns what each entry printed, in
  -- order: the text between one prompt and the next.
  local function repl(lines)
    local input = tmpfile(table.concat(lines, "\n") .. "\n")
    local out, rc = run.sh(E .. " -i < " .. input .. " 2>&1")
    os.remove(input)
    assert.are.equal(0, rc, out)
    local shown = {}
    local at = select(2, out:find("ember> ", 1, true))
    while at do
      local s, e = out:find("ember> ", at + 1, true)
      shown[#shown + 1] = out:sub(at + 1, (s or 0) - 1)
      at = e
    end
    return shown, out
  end

  it("the REPL prints tables as tables", function()
    local shown, out = repl({
      "t = ember.ones(2, 3)",
      "t:shape()",
      "m = ember.nn.Linear(3, 2)",
      "m:state_dict()",
      "{b = {c = 'x', d = {1, 2, {3, {4}}}}, [2.5] = true, a = 1}",
      "local r = {} for i = 1, 30 do r[i] = i end return r",
      "local r = {} for i = 1, 30 do r['k' .. i] = i end return r",
      "{w = t, n = 1}",
      "c = {}; c.self = c; c",
      "m2 = ember.nn.Sequential(ember.nn.Linear(2, 2)); m2:compile{optimizer = 'sgd', loss = 'mse'}",
      "h = m2:fit(ember.ones(4, 2), ember.zeros(4, 2), {epochs = 3, verbose = 0})",
      "h",
    })
    assert.are.equal("{2, 3}\n", shown[2], out)
    -- one line per entry, sorted by name, with dtype and shape
    assert.are.equal("bias    float32  {2}\nweight  float32  {2, 3}\n", shown[4], out)
    -- numeric keys before string keys; deeper than 3 levels is {...}
    assert.are.equal('{[2.5] = true, a = 1, b = {c = "x", d = {1, 2, {...}}}}\n', shown[5], out)
    assert.are.equal("{\n  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,\n"
      .. "  ... (30 entries)\n}\n", shown[6], out)
    -- keys sorted as strings; 20 shown then "..."
    local _, n = shown[7]:gsub("k%d+ = %d+", "")
    assert.are.equal(20, n, out)
    assert.truthy(shown[7]:find("{\n  k1 = 1, k10 = 10,", 1, true), out)
    assert.truthy(shown[7]:find("%.%.%. %(30 entries%)\n}\n$"), out)
    -- a tensor inside a table is summed up on one line
    assert.are.equal("{n = 1, w = tensor(float32, {2, 3})}\n", shown[8], out)
    assert.are.equal("{self = <cycle>}\n", shown[9], out)
    -- fit's history as its lists
    assert.truthy(shown[12]:find("^{%s*epoch = {1, 2, 3},%s*loss = {[%d.e-]+, [%d.e-]+, [%d.e-]+}%s*}\n$"), out)
  end)

  it("the REPL prints several results on labelled lines, keeps the first in _, hides after ';'", function()
    local shown, out = repl({
      "t = ember.tensor({{1, 5}, {7, 2}})",
      "t:max(2)",
      "_",
      "'hidden';",
      "_",
      "t:sum();",
      "_:item()",
      "x = 1; x",
      "y = 2; y + 1",
      "s = 'a;b'; s",
      "x = 3; x;",
      "_",
      "function f() return 1 end",
      "f()",
    })
    assert.are.equal("[1] tensor([5., 7.])\n    [float32, size 2]\n"
      .. "[2] tensor([2, 1])\n    [int64, size 2]\n", shown[2], out)
    assert.are.equal("tensor([5., 7.])\n[float32, size 2]\n", shown[3], out)
    assert.are.equal("", shown[4], out)
    assert.are.equal("hidden\n", shown[5], out)
    assert.are.equal("", shown[6], out)
    assert.are.equal("15.0\n", shown[7], out)
    assert.are.equal("1\n", shown[8], out)   -- not a continuation prompt
    assert.are.equal("3\n", shown[9], out)
    assert.are.equal("a;b\n", shown[10], out)
    assert.are.equal("", shown[11], out)
    assert.are.equal("3\n", shown[12], out)
    assert.are.equal("1\n", shown[14], out)
    assert.falsy(out:find(">> ", 1, true), out)
  end)

  it("the REPL on a terminal completes names and keeps history", function()
    local hist = os.tmpname()
    os.remove(hist)
    -- "ember.zeros_l<TAB>" completes to ember.zeros_like; "y:nume<TAB>" to y:numel
    local keys = "y = ember.ones(3)\nprint(ember.zeros_l\t(y):numel())\nprint(y:nume\t())\n"
    local out, rc = run.pty(keys, {history = hist})
    if not out then return end
    assert.are.equal(0, rc, out)
    -- the editor shows the completed lines, and both ran and printed 3
    assert.truthy(out:find("print(ember.zeros_like(y):numel())", 1, true), out)
    assert.truthy(out:find("print(y:numel())", 1, true), out)
    local _, threes = out:gsub("\n3\r?\n", "")
    assert.are.equal(2, threes, out)
    local f = io.open(hist)
    assert.is_not_nil(f, "no history file written")
    local h = f:read("a")
    f:close()
    os.remove(hist)
    assert.truthy(h:find("y = ember.ones(3)", 1, true), h)
  end)

  it("the REPL keeps a multi-line chunk as one history entry", function()
    local hist = os.tmpname()
    os.remove(hist)
    local out, rc = run.pty("function g()\n  return 7\nend\ng()\n", {history = hist})
    if not out then return end
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("\n7\r?\n"), out)
    local f = assert(io.open(hist))
    local h = f:read("a")
    f:close()
    os.remove(hist)
    -- one line of the file per entry; the chunk's newlines are \x1f there
    assert.are.equal("function g()\x1f  return 7\x1fend\ng()\n", h)
    -- and a second session reads it back as one entry
    f = assert(io.open(hist, "w"))
    f:write(h)
    f:close()
    out, rc = run.pty("x = 1\n", {history = hist})
    assert.are.equal(0, rc, out)
    f = assert(io.open(hist))
    h = f:read("a")
    f:close()
    os.remove(hist)
    assert.are.equal("function g()\x1f  return 7\x1fend\ng()\nx = 1\n", h)
  end)
  -- lua.c and python do the same: Ctrl-D at a continuation prompt drops
  -- the statement with what it lacked, and only Ctrl-D at the main
  -- prompt ends the session
  it("the REPL on a terminal: Ctrl-D at '>>' reports the statement and goes on", function()
    -- the pauses let the line editor take the ^D as typed at the '>>'
    -- prompt; script ends the input with one more end of file
    local out, rc = run.pty({sh = "(printf 'for i = 1, 2 do\\n'; sleep 0.3; printf '\\004'; sleep 0.3; " ..
                                  "printf 'print(40 + 2)\\n')"})
    if not out then return end
    assert.are.equal(0, rc, out)
    -- the message on a line of its own, then the next statement ran
    assert.truthy(out:find("\n[^\n]*stdin:1: 'end' expected near <eof>\r?\n", 1), out)
    assert.falsy(out:find("%^Dstdin"), out)
    assert.truthy(out:find("print%(40 %+ 2%)\r?\n42\r?\n"), out)
  end)

  it("the REPL without a terminal: input ending inside a statement reports it and ends", function()
    local input = tmpfile("x = 1\nfor i = 1, 2 do\n")
    local out, rc = run.sh(E .. " -i < " .. input)
    os.remove(input)
    assert.are.equal(0, rc, out)
    local _, n = out:gsub("stdin:1: 'end' expected near <eof>", "")
    assert.are.equal(1, n, out)
  end)
end)
