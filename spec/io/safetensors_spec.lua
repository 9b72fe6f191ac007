-- ember.save / ember.load: safetensors round trips, the exact bytes Ember
-- writes, atomic saves, and a reader that turns every corrupt file into an
-- error naming the file (never a crash: `make asan` runs this file too).
local ember = require "ember"
local run = require "helpers.run"

local dir          -- a fresh folder per test

local function path(name) return dir .. "/" .. name end

local read_bytes = run.read_file

local write_bytes = run.write_file

--- The entries of the test folder, sorted.
local function listing()
  local out = run.sh("ls -A " .. run.q(dir))
  local names = {}
  for name in out:gmatch("[^\n]+") do names[#names + 1] = name end
  table.sort(names)
  return names
end

--- Assert that fn raises an error whose message holds every plain string.
local function fails_with(fn, ...)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  err = tostring(err)
  for _, s in ipairs({...}) do
    assert.truthy(err:find(s, 1, true), ("message %q lacks %q"):format(err, s))
  end
  return err
end

--- A safetensors file from a header string and data bytes.
local function st_bytes(header, data)
  return string.pack("<I8", #header) .. header .. (data or "")
end

--- Write such a file into the test folder and return its path.
local function st_file(name, header, data)
  local p = path(name)
  write_bytes(p, st_bytes(header, data))
  return p
end

--- A one-tensor header.
local function one(name, dtype, shape, b, e)
  return ('{"%s":{"dtype":"%s","shape":%s,"data_offsets":[%s,%s]}}')
         :format(name, dtype, shape, b, e)
end

--- Flat values of a tensor (a 0-d tensor gives one).
local function flat(t) return t:reshape(-1):totable() end

before_each(function() dir = run.tmpdir() end)
after_each(function() run.rmdir(dir) end)

describe("ember.save and ember.load", function()

  -- {====================================================================
  -- Round trips
  -- =====================================================================

  it("round-trip every dtype with exact values", function()
    local ts = {
      f32 = ember.tensor({{1.5, -2.25, 3.4028234663852886e38}, {-0.0, 1e-45, -1/0}}),
      f64 = ember.tensor({0.1, -1e300, 5e-324, 1/0}, {dtype = "float64"}),
      i32 = ember.tensor({-2147483648, 2147483647, 0}, {dtype = "int32"}),
      i64 = ember.tensor({math.mininteger, math.maxinteger, 2^53 + 1}, {dtype = "int64"}),
      u8 = ember.tensor({0, 1, 128, 255}, {dtype = "uint8"}),
      b = ember.tensor({{true, false}, {false, true}}),
    }
    ts.i64[3] = (1 << 53) + 1   -- a value a double cannot hold
    local p = path("all.safetensors")
    ember.save(p, ts)
    local back, meta = ember.load(p)
    assert.are.same({}, meta)
    local n = 0
    for name, t in pairs(ts) do
      n = n + 1
      local u = back[name]
      assert.is_not_nil(u, name)
      assert.are.equal(t.dtype, u.dtype)
      assert.are.same(t:shape(), u:shape())
      assert.are.same(flat(t), flat(u))
    end
    for _ in pairs(back) do n = n - 1 end
    assert.are.equal(0, n)
    assert.are.equal((1 << 53) + 1, back.i64[3])
    assert.are.equal(math.mininteger, back.i64[1])
    -- -0.0 keeps its sign, NaN stays NaN
    assert.are.equal(-math.huge, 1 / back.f32[2][1])
    local nan = ember.tensor({0/0, 1}, {dtype = "float64"})
    ember.save(p, {nan = nan})
    local v = ember.load(p).nan:totable()
    assert.is_true(v[1] ~= v[1])
    assert.are.equal(1, v[2])
  end)

  it("round-trip shapes: 0-d, 1-d, 8-d and empty", function()
    local ts = {
      scalar = ember.tensor(7.5),
      int_scalar = ember.tensor(-3, {dtype = "int64"}),
      vec = ember.arange(1, 6),
      d8 = ember.arange(0, 256):reshape(2, 2, 2, 2, 2, 2, 2, 2),
      empty = ember.zeros(0),
      empty3 = ember.zeros(2, 0, 3, {dtype = "int32"}),
    }
    local p = path("shapes.safetensors")
    ember.save(p, ts)
    local back = ember.load(p)
    for name, t in pairs(ts) do
      assert.are.same(t:shape(), back[name]:shape(), name)
      assert.are.equal(t.dtype, back[name].dtype, name)
      assert.is_true(t:equal(back[name]), name)
    end
    assert.are.equal(0, back.scalar:dim())
    assert.are.equal(7.5, back.scalar:item())
    assert.are.equal(0, back.empty3:numel())
  end)

  it("round-trip a big tensor", function()
    ember.manual_seed(3)
    local big = ember.randn(1000, 1000)
    local p = path("big.safetensors")
    ember.save(p, {big = big, small = ember.ones(3)})
    local back = ember.load(p)
    assert.is_true(big:equal(back.big))
    -- the data is laid out back to back after an 8-aligned header
    local s = read_bytes(p)
    local n = string.unpack("<I8", s)
    assert.are.equal(0, (8 + n) % 8)
    assert.are.equal(8 + n + 4000000 + 12, #s)
  end)

  it("writes strided tensors in logical (row-major) order", function()
    local a = ember.arange(0, 6, {dtype = "float32"}):reshape(2, 3)
    local ts = {t = a:t(), col = a:narrow(2, 2, 1), row = a[2],
                wide = ember.tensor({1, 2, 3}):expand(2, 3)}
    assert.is_false(ts.t:is_contiguous())
    local p = path("strided.safetensors")
    ember.save(p, ts)
    local back = ember.load(p)
    assert.are.same({{0, 3}, {1, 4}, {2, 5}}, back.t:totable())
    assert.are.same({{1}, {4}}, back.col:totable())
    assert.are.same({3, 4, 5}, back.row:totable())
    assert.are.same({{1, 2, 3}, {1, 2, 3}}, back.wide:totable())
    assert.is_true(back.t:is_contiguous())
    -- the saved bytes are the logical order
    local s = read_bytes(p)
    local n = string.unpack("<I8", s)
    local hdr = s:sub(9, 8 + n)
    local b = tonumber(hdr:match('"t":{[^}]-"data_offsets":%[(%d+),'))
    local v = {string.unpack("<ffffff", s, 8 + n + b + 1)}
    v[7] = nil                              -- unpack's next position
    assert.are.same({0, 3, 1, 4, 2, 5}, v)
  end)

  it("loads fresh CPU tensors that require no grad", function()
    local w = ember.randn(2, 2, {requires_grad = true})
    local y = w * 2                         -- a recorded result
    local p = path("grad.safetensors")
    ember.save(p, {w = w, y = y})
    local back = ember.load(p)
    assert.is_false(back.w.requires_grad)
    assert.is_false(back.y.requires_grad)
    assert.are.equal("cpu", back.w.device)
    assert.is_true(back.w:equal(w:detach()))
    back.w[1][1] = 100                      -- its own storage
    assert.are_not.equal(100, w[1][1])
  end)

  it("a single tensor comes back as itself, with its metadata", function()
    local t = ember.tensor({{1, 2}, {3, 4}})
    local p = path("one.safetensors")
    ember.save(p, t)
    local back, meta = ember.load(p)
    assert.is_true(ember.is_tensor(back))
    assert.is_true(back:equal(t))
    assert.are.same({}, meta)
    ember.save(p, t, {epoch = "3"})
    back, meta = ember.load(p)
    assert.is_true(back:equal(t))
    assert.are.same({epoch = "3"}, meta)
    -- a table holding one tensor named "tensor" stays a table
    ember.save(p, {tensor = t})
    back = ember.load(p)
    assert.is_false(ember.is_tensor(back))
    assert.is_true(back.tensor:equal(t))
    -- an empty table is a valid file
    ember.save(p, {})
    back, meta = ember.load(p)
    assert.are.same({}, back)
    assert.are.same({}, meta)
  end)

  it("round-trip metadata with JSON escapes and UTF-8", function()
    local meta = {
      quote = 'say "hi"', backslash = [[C:\path\]], newline = "a\nb\r\n",
      tab = "a\tb", controls = "\1\2\27\31\127", slash = "a/b",
      utf8 = "héllo wörld ✓ 🔥 日本", [""] = "empty key", empty = "",
      ["kéy \"q\""] = "v", arch = '{"layers":[{"type":"Linear","in":4}]}',
    }
    local p = path("meta.safetensors")
    ember.save(p, {x = ember.ones(1)}, meta)
    local _, back = ember.load(p)
    assert.are.same(meta, back)
    -- the header escapes what JSON requires and keeps UTF-8 as it is
    local s = read_bytes(p)
    local hdr = s:sub(9, 8 + string.unpack("<I8", s))
    assert.truthy(hdr:find([["controls":"\u0001\u0002\u001b\u001f]] .. "\127", 1, true))
    assert.truthy(hdr:find([["newline":"a\nb\r\n"]], 1, true))
    assert.truthy(hdr:find([["backslash":"C:\\path\\"]], 1, true))
    assert.truthy(hdr:find('"utf8":"héllo wörld ✓ 🔥 日本"', 1, true))
    -- equal saves give equal files, whatever the table order
    local p2 = path("meta2.safetensors")
    ember.save(p2, {x = ember.ones(1)}, meta)
    assert.are.equal(s, read_bytes(p2))
  end)

  it("write the header byte for byte as the reference writer does", function()
    local p = path("exact.safetensors")
    ember.save(p, {b = ember.tensor({1, 2}, {dtype = "int64"}),
                   a = ember.tensor({0.5, -1}), m = ember.tensor({true, false}),
                   c = ember.tensor({3, 4})},
               {k = "v", ["a b"] = "\"\\"})
    -- metadata first, sorted by key; then tensors by element size (largest
    -- first), then name; offsets back to back; spaces to an 8-byte boundary
    local json = '{"__metadata__":{"a b":"\\"\\\\","k":"v"},' ..
                 '"b":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},' ..
                 '"a":{"dtype":"F32","shape":[2],"data_offsets":[16,24]},' ..
                 '"c":{"dtype":"F32","shape":[2],"data_offsets":[24,32]},' ..
                 '"m":{"dtype":"BOOL","shape":[2],"data_offsets":[32,34]}}'
    assert.are.equal(259, #json)
    local header = json .. "     "           -- 8 + 264 = 272 = 34 * 8
    local data = string.pack("<i8i8ffffBB", 1, 2, 0.5, -1, 3, 4, 1, 0)
    assert.are.equal(st_bytes(header, data), read_bytes(p))

    ember.save(p, ember.tensor(2.5))
    json = '{"__metadata__":{"ember.format":"tensor"},' ..
           '"tensor":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}'
    assert.are.equal(99, #json)                  -- 8 + 99 + 5 = 112 = 14 * 8
    assert.are.equal(st_bytes(json .. "     ", string.pack("<f", 2.5)), read_bytes(p))

    ember.save(p, {})
    assert.are.equal(st_bytes("{}      "), read_bytes(p))
  end)

  it("write bfloat16 and float16 tensors as BF16 and F16, byte for byte", function()
    local p = path("half.safetensors")
    ember.save(p, {h = ember.tensor({1.5, -2}, {dtype = "float16"}),
                   b = ember.tensor({1.5, -2}, {dtype = "bfloat16"}),
                   f = ember.tensor({0.25})})
    local json = '{"f":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' ..
                 '"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},' ..
                 '"h":{"dtype":"F16","shape":[2],"data_offsets":[8,12]}}'
    local header = json .. (" "):rep(-(8 + #json) % 8)
    local data = string.pack("<fI2I2I2I2", 0.25, 0x3fc0, 0xc000, 0x3e00, 0xc000)
    assert.are.equal(st_bytes(header, data), read_bytes(p))
    local t = ember.load(p)
    assert.are.equal("float16", t.h.dtype)
    assert.are.equal("bfloat16", t.b.dtype)
    assert.are.same({1.5, -2}, t.h:totable())
    assert.are.same({1.5, -2}, t.b:totable())
  end)

  it("reads files written differently: whitespace, escapes, gaps, half and widened dtypes", function()
    -- a header as Python's json.dumps writes it, with \u escapes
    local hdr = '{ "__metadata__" : { "n\\u00e9" : "\\ud83d\\udd25\\/\\t" } ,\n' ..
                '  "w" : { "shape" : [ 2 ] , "data_offsets" : [ 8 , 16 ] , "dtype" : "F32" } }'
    local p = st_file("ws.safetensors", hdr, ("\0"):rep(8) .. string.pack("<ff", 1.5, -2))
    local t, meta = ember.load(p)
    assert.are.same({1.5, -2}, t.w:totable())            -- bytes 0..8 unclaimed
    assert.are.same({["né"] = "🔥/\t"}, meta)
    -- F16 and BF16 load as float16 and bfloat16 (bit for bit); I8, I16,
    -- U16 and U32 widen to int32 and int64
    local h = '{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},' ..
              '"bf":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},' ..
              '"i8":{"dtype":"I8","shape":[2],"data_offsets":[12,14]},' ..
              '"i16":{"dtype":"I16","shape":[2],"data_offsets":[14,18]},' ..
              '"u16":{"dtype":"U16","shape":[1],"data_offsets":[18,20]},' ..
              '"u32":{"dtype":"U32","shape":[1],"data_offsets":[20,24]}}'
    local data = string.pack("<I2I2I2I2", 0x3e00, 0xfbff, 0x0001, 0x7c00) ..  -- 1.5, -65504, 2^-24, inf
                 string.pack("<I2I2", 0x3f80, 0xc0a0) ..                       -- 1, -5
                 string.pack("<i1i1i2i2I2I4", -128, 127, -32768, 32767, 65535, 4294967295)
    t = ember.load(st_file("wide.safetensors", h, data))
    assert.are.equal("float16", t.h.dtype)
    assert.are.same({1.5, -65504, 2^-24, math.huge}, t.h:totable())
    assert.are.equal("bfloat16", t.bf.dtype)
    assert.are.same({1, -5}, t.bf:totable())
    assert.are.equal("int32", t.i8.dtype)
    assert.are.same({-128, 127}, t.i8:totable())
    assert.are.same({-32768, 32767}, t.i16:totable())
    assert.are.same({65535}, t.u16:totable())
    assert.are.equal("int64", t.u32.dtype)
    assert.are.same({4294967295}, t.u32:totable())
  end)

  -- }====================================================================

  -- {====================================================================
  -- Saving: argument errors, atomicity
  -- =====================================================================

  it("reject bad arguments, naming what is wrong", function()
    local p = path("x.safetensors")
    local t = ember.ones(2)
    fails_with(function() ember.save(nil, t) end, "save: expected a path (string) as argument 1, got nil")
    fails_with(function() ember.save(p, 5) end, "save: expected a tensor or a table of tensors as argument 2, got number")
    fails_with(function() ember.save(p, {t}) end, "save: the table of tensors must have string keys, got number (1)")
    fails_with(function() ember.save(p, {a = 5}) end, "save: value for 'a' must be a tensor, got number")
    fails_with(function() ember.save(p, {a = {}}) end, "save: value for 'a' must be a tensor, got table")
    fails_with(function() ember.save(p, {["a\0b"] = t}) end, "save: tensor name 'a...' contains a NUL byte")
    fails_with(function() ember.save(p, {[""] = t}) end, "save: tensor 1 has an empty name")
    fails_with(function() ember.save(p, {__metadata__ = t}) end, "save: '__metadata__' is reserved")
    fails_with(function() ember.save(p, {a = t, b = ember.ones(1)}, 7) end, "save: metadata must be a table of strings, got number")
    fails_with(function() ember.save(p, t, {epoch = 3}) end, "save: metadata value for 'epoch' must be a string, got number")
    fails_with(function() ember.save(p, t, {"x"}) end, "save: metadata keys must be strings, got number (1)")
    fails_with(function() ember.save(p, t, {k = "a\0b"}) end, "save: metadata value 'a...' contains a NUL byte")
    fails_with(function() ember.save(p, t, {["ember.format"] = "x"}) end,
               "save: metadata key 'ember.format' is reserved when saving a single tensor")
    fails_with(function() ember.save(p, {a = t}, {k = "\xff"}) end, "save: metadata value for 'k' is not valid UTF-8")
    fails_with(function() ember.save(p, {["\xc3"] = t}) end, "save: tensor name 1 is not valid UTF-8")
    local closed = ember.ones(2)
    do local c <close> = closed end
    fails_with(function() ember.save(p, closed) end, "save: the tensor has been closed")
    fails_with(function() ember.save(p, {c = closed}) end, "save: tensor 'c' has been closed")
    fails_with(function() ember.load(nil) end, "load: expected a path (string) as argument 1, got nil")
    assert.are.same({}, listing())          -- nothing was created
  end)

  it("a failed save leaves the existing file byte-identical and no temporary file", function()
    local p = path("model.safetensors")
    ember.save(p, {w = ember.arange(0, 10)}, {v = "1"})
    local before = read_bytes(p)
    local bad = {
      function() ember.save(p, {w = ember.ones(2), x = "not a tensor"}) end,
      function() ember.save(p, {w = ember.ones(2)}, {v = 2}) end,
      function() ember.save(p, {__metadata__ = ember.ones(2)}) end,
      function() ember.save(p, {[""] = ember.ones(2)}) end,
      function() ember.save(p, ember.ones(2), {["ember.format"] = "x"}) end,
      function() ember.save(p, {w = ember.ones(2)}, {["\xff"] = "x"}) end,
    }
    for i, fn in ipairs(bad) do
      assert.is_false(pcall(fn), "case " .. i)
      assert.are.equal(before, read_bytes(p), "case " .. i)
      assert.are.same({"model.safetensors"}, listing(), "case " .. i)
    end
    -- a failure after the temporary file exists (the target is a folder):
    -- the temporary file is removed
    local sub = path("taken.safetensors")
    assert(os.execute("mkdir " .. run.q(sub)))
    fails_with(function() ember.save(sub, ember.ones(2)) end,
               "save: cannot replace '" .. sub .. "'")
    assert.are.same({"model.safetensors", "taken.safetensors"}, listing())
    -- a good save replaces the file
    ember.save(p, {w = ember.ones(3)})
    assert.are.same({1, 1, 1}, ember.load(p).w:totable())
    assert.are.same({"model.safetensors", "taken.safetensors"}, listing())
  end)

  it("saving into a missing folder is a clear error", function()
    local p = path("no/such/dir/m.safetensors")
    fails_with(function() ember.save(p, ember.ones(1)) end,
               "save: cannot write '" .. p .. "': No such file or directory")
  end)

  -- }====================================================================

  -- {====================================================================
  -- Loading: missing and corrupt files
  -- =====================================================================

  it("a missing file or a folder is a clear error", function()
    fails_with(function() ember.load(path("x")) end,
               "load: cannot open '" .. path("x") .. "': No such file or directory")
    fails_with(function() ember.load(dir) end, "load: '" .. dir .. "' is not a regular file")
  end)

  it("a file truncated anywhere is an error that says so", function()
    local p = path("full.safetensors")
    ember.save(p, {a = ember.arange(0, 6):reshape(2, 3), b = ember.ones(2, {dtype = "int64"})},
               {note = "x"})
    local s = read_bytes(p)
    local n = string.unpack("<I8", s)
    local cut = path("cut.safetensors")
    -- every prefix but the whole file (the last tensor's data runs to the end)
    for len = 0, #s - 1 do
      write_bytes(cut, s:sub(1, len))
      local err = fails_with(function() ember.load(cut) end, "load: '" .. cut .. "'", "truncated")
      local _, err2 = pcall(ember.load, cut, {mmap = true})
      assert.are.equal((err:gsub("^[^\n]-:%d+: ", "")), err2)
      if len < 8 then
        assert.truthy(err:find("8-byte header length", 1, true), err)
      elseif len < 8 + n then
        assert.truthy(err:find("its header length is " .. n .. " bytes", 1, true), err)
      else
        assert.truthy(err:find("past the end of the data", 1, true), err)
      end
    end
  end)

  -- Each case: a header (or whole file bytes), data, and strings that the
  -- message must hold besides "load: '<file>'".
  local F32x2 = string.pack("<ff", 1, 2)
  local deep = 100000
  local corrupt = {
    {"header length huge", raw = string.pack("<I8", 1 << 62) .. "{}",
     "header length 4611686018427387904 is over the limit of 104857600 bytes"},
    {"header length over the limit", raw = string.pack("<I8", 100 * 1024 * 1024 + 1) .. "{}",
     "over the limit"},
    {"empty header", "", "header is not a JSON object (it starts with nothing)"},
    {"header not JSON", "hello world", "header is not a JSON object (it starts with no JSON value)"},
    {"header an array", "[1, 2]", "header is not a JSON object (it starts with an array)"},
    {"bare word in object", "{hello}", "header is not valid JSON at byte 1 of the header: expected a string"},
    {"missing value", '{"a":}', "not valid JSON at byte 5", "expected a JSON value"},
    {"missing colon", '{"a" 1}', "not valid JSON", "expected ':'"},
    {"trailing comma", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},}', data = F32x2,
     "not valid JSON", "expected a string"},
    {"unterminated", '{"a":{"dtype":"F32', "not valid JSON", "unterminated string"},
    {"trailing garbage", one("a", "F32", "[2]", 0, 8) .. " x", data = F32x2,
     "unexpected characters after the top-level object"},
    {"two objects", "{}{}", "unexpected characters after the top-level object"},
    {"bad escape", '{"a\\x":{}}', "invalid escape in a string"},
    {"lone surrogate", '{"\\ud800":{}}', "lone high surrogate"},
    {"lone low surrogate", '{"\\udc00x":{}}', "lone low surrogate"},
    {"bad hex", '{"\\u12g4":{}}', "bad hex digit"},
    {"NUL escape", '{"a\\u0000":{}}', "NUL character"},
    {"raw control character", '{"a\nb":{}}', "control character in a string"},
    {"invalid UTF-8", '{"a\xff":{}}', "invalid UTF-8"},
    {"overlong UTF-8", '{"\xc0\xaf":{}}', "invalid UTF-8"},
    {"UTF-8 surrogate", '{"\xed\xa0\x80":{}}', "invalid UTF-8"},
    {"leading zero", one("a", "F32", "[02]", 0, 8), data = F32x2, "not valid JSON"},
    {"bad literal", '{"a":tru}', "not valid JSON", "expected a JSON value"},
    {"unknown dtype", one("w", "F33", "[2]", 0, 8), data = F32x2, "tensor 'w' has unknown dtype 'F33'"},
    {"unsupported dtype", one("w", "F8_E4M3", "[2]", 0, 2), data = "\0\0",
     "tensor 'w' has dtype F8_E4M3, which Ember cannot load"},
    {"dtype not a string", '{"w":{"dtype":32,"shape":[2],"data_offsets":[0,8]}}', data = F32x2,
     "tensor 'w': dtype must be a string, got a number"},
    {"negative shape", one("w", "F32", "[2,-1]", 0, 8), data = F32x2,
     "tensor 'w' has shape entry -1 (entries must be non-negative integers)"},
    {"float shape", one("w", "F32", "[1.5]", 0, 8), data = F32x2, "tensor 'w' has shape entry 1.5"},
    {"exponent shape", one("w", "F32", "[2e0]", 0, 8), data = F32x2, "tensor 'w' has shape entry 2e0"},
    {"huge shape entry", one("w", "F32", "[99999999999999999999]", 0, 8), data = F32x2,
     "shape entry 99999999999999999999"},
    {"string shape", one("w", "F32", '["2"]', 0, 8), data = F32x2,
     "tensor 'w': shape entries must be non-negative integers, got a string"},
    {"shape not an array", one("w", "F32", "2", 0, 8), data = F32x2,
     "tensor 'w': shape must be an array of non-negative integers, got a number"},
    {"too many dims", one("w", "F32", "[1,1,1,1,1,1,1,1,2]", 0, 8), data = F32x2,
     "tensor 'w' has more than 8 dimensions"},
    {"shape overflows", one("w", "F32", "[4294967296,4294967296]", 0, 8), data = F32x2,
     "tensor 'w' has shape [4294967296,4294967296], which is too large"},
    {"empty shape overflows", one("w", "F32", "[0,4294967296,4294967296]", 0, 0),
     "tensor 'w' has shape [0,4294967296,4294967296], which is too large"},
    {"offsets out of range", one("w", "F32", "[2]", 8, 16), data = F32x2,
     "tensor 'w' has data_offsets [8, 16] past the end of the data (8 bytes)"},
    {"end before begin", one("w", "F32", "[0]", 8, 0), data = F32x2,
     "tensor 'w' has data_offsets [8, 0] that end before they begin"},
    {"size mismatch", one("fc.weight", "F32", "[4,4]", 0, 96), data = ("\0"):rep(96),
     "tensor 'fc.weight' has data_offsets [0, 96] but shape [4,4] F32 needs 64 bytes"},
    {"negative offset", one("w", "F32", "[2]", -8, 0), data = F32x2, "data_offsets entry -8"},
    {"three offsets", '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}', data = F32x2,
     "tensor 'w': data_offsets must hold exactly 2 integers, got more"},
    {"one offset", '{"w":{"dtype":"F32","shape":[2],"data_offsets":[8]}}', data = F32x2,
     "tensor 'w': data_offsets must hold exactly 2 integers [begin, end], got 1"},
    {"overlapping ranges",
     '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' ..
     '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', data = ("\0"):rep(12),
     "tensors 'a' and 'b' overlap (data_offsets [0, 8] and [4, 12])"},
    {"range inside another",
     '{"a":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},' ..
     '"b":{"dtype":"U8","shape":[2],"data_offsets":[8,10]}}', data = ("\0"):rep(16),
     "tensors 'a' and 'b' overlap"},
    {"duplicate names",
     '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' ..
     '"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', data = F32x2,
     "tensor name 'a' appears twice in the header"},
    {"missing field", '{"w":{"dtype":"F32","shape":[2]}}', data = F32x2, "tensor 'w' has no 'data_offsets'"},
    {"unknown field", '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}', data = F32x2,
     "tensor 'w' has an unknown field 'x' (expected dtype, shape and data_offsets)"},
    {"duplicate field", '{"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}', data = F32x2,
     "tensor 'w' has 'dtype' twice"},
    {"entry not an object", '{"w":[1,2]}', "tensor 'w': expected an object with dtype, shape and data_offsets, got an array"},
    {"metadata non-string", '{"__metadata__":{"epoch":3}}',
     "__metadata__ value for 'epoch' must be a string, got a number"},
    {"metadata null", '{"__metadata__":{"epoch":null}}', "must be a string, got null"},
    {"metadata not an object", '{"__metadata__":["a"]}', "__metadata__ must be an object of strings, got an array"},
    {"metadata twice", '{"__metadata__":{},"__metadata__":{}}', "__metadata__ appears twice in the header"},
    {"metadata key twice", '{"__metadata__":{"k":"a","k":"b"}}', "__metadata__ key 'k' appears twice"},
    {"bool byte not 0/1", one("m", "BOOL", "[3]", 0, 3), data = "\1\0\2",
     "tensor 'm' (BOOL) holds a byte other than 0 or 1 at element 3"},
    {"deep nesting in a tensor", '{"w":' .. ("["):rep(deep) .. ("]"):rep(deep) .. "}",
     "tensor 'w': expected an object with dtype, shape and data_offsets, got an array"},
    {"deep nesting in a shape", '{"w":{"dtype":"F32","shape":' .. ("["):rep(deep) .. ("]"):rep(deep) .. "}}",
     "tensor 'w': shape entries must be non-negative integers, got an array"},
    {"deep nesting in metadata", '{"__metadata__":{"k":' .. ("{"):rep(deep) .. "}}",
     "__metadata__ value for 'k' must be a string, got an object"},
    {"deep nesting at the top", ("["):rep(deep) .. ("]"):rep(deep),
     "header is not a JSON object (it starts with an array)"},
  }

  for _, case in ipairs(corrupt) do
    it("corrupt file: " .. case[1], function()
      local p = path("bad.safetensors")
      write_bytes(p, case.raw or st_bytes(case[2], case.data))
      local want = {"load: '" .. p .. "': "}
      for i = case.raw and 2 or 3, #case do want[#want + 1] = case[i] end
      fails_with(function() ember.load(p) end, table.unpack(want))
      -- mapping the file validates the same, before any tensor is made
      fails_with(function() ember.load(p, {mmap = true}) end, table.unpack(want))
    end)
  end

  it("random damage to a valid file gives an error or a valid load, never a crash", function()
    local p = path("good.safetensors")
    ember.save(p, {a = ember.arange(0, 6):reshape(2, 3), b = ember.tensor({true, false}),
                   c = ember.ones(3, {dtype = "int64"})}, {k = "v"})
    local s = read_bytes(p)
    local bad = path("damaged.safetensors")
    math.randomseed(7)
    local errors = 0
    for _ = 1, 300 do
      local bytes = {s:byte(1, -1)}
      for _ = 1, math.random(1, 3) do
        local i = math.random(1, #bytes)
        bytes[i] = math.random(0, 255)
      end
      write_bytes(bad, string.char(table.unpack(bytes)))
      local ok, err = pcall(ember.load, bad)
      local ok2, err2 = pcall(ember.load, bad, {mmap = true})
      assert.are.equal(ok, ok2)
      if not ok then
        assert.are.equal(err, err2)
        errors = errors + 1
        assert.truthy(tostring(err):find("load: ", 1, true), tostring(err))
      end
    end
    assert.is_true(errors > 50, "only " .. errors .. " damaged files failed to load")
  end)

  -- }====================================================================
end)
