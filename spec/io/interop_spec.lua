-- Interop: the files Ember writes are what other safetensors readers expect,
-- and Ember reads what they write.
--   * spec/support/safetensors_py.py is an independent stdlib-only Python
--     reader and writer that follows the reference implementation's rules
--     (8-aligned data, tensors back to back, no stray bytes).
--   * spec/support/torch_fixture.safetensors was written by PyTorch through
--     the reference `safetensors` package (spec/support/
--     make_safetensors_fixture.py); its values are kept inline below, so
--     the specs need python3 but never torch.
local ember = require "ember"
local run = require "helpers.run"

local SCRIPT = "spec/support/safetensors_py.py"
local FIXTURE = "spec/support/torch_fixture.safetensors"
local CODE = {float32 = "F32", float64 = "F64", int32 = "I32", int64 = "I64",
              uint8 = "U8", bool = "BOOL", float16 = "F16", bfloat16 = "BF16"}

local dir

--- Run the Python script (python3 must be there: tools/deps.sh installs it).
local function python(args)
  local version, rc = run.sh("python3 --version")
  assert(rc == 0, "spec/io/interop_spec.lua needs python3 on PATH " ..
         "(`make deps` installs it, see tools/deps.sh): " .. version)
  local out, rc2 = run.sh("python3 " .. SCRIPT .. " " .. args)
  assert(rc2 == 0, ("python3 %s %s failed:\n%s"):format(SCRIPT, args, out))
  return out
end

--- Flat values of a tensor (a 0-d tensor gives one).
local function flat(t) return t:reshape(-1):totable() end

--- Round x to float32, as the file stores it.
local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

--- Equal lists, NaN equal to NaN, -0.0 distinct from 0.0.
local function same_values(want, got, what)
  assert.are.equal(#want, #got, what)
  for i = 1, #want do
    local a, b = want[i], got[i]
    if a ~= a then
      assert.is_true(b ~= b, ("%s[%d]: expected NaN, got %s"):format(what, i, tostring(b)))
    else
      assert.are.equal(a, b, ("%s[%d]"):format(what, i))
      assert.are.equal(math.type(a), math.type(b), ("%s[%d] number type"):format(what, i))
      if a == 0 and math.type(a) == "float" then
        assert.are.equal(1 / a, 1 / b, ("%s[%d]: sign of zero"):format(what, i))
      end
    end
  end
end

before_each(function() dir = run.tmpdir() end)
after_each(function() run.rmdir(dir) end)

describe("safetensors interop", function()

  it("a Python reader that follows the reference rules reads Ember's files", function()
    ember.manual_seed(5)
    local ids = ember.tensor({0, 0, 0}, {dtype = "int64"})
    ids[1], ids[2], ids[3] = math.mininteger, math.maxinteger, (1 << 53) + 1
    local ts = {
      weight = ember.tensor({{0.1, -2.5, 3.4028234663852886e38}, {-0.0, 1e-45, 1/0}}),
      double = ember.tensor({0.1, -1e300, 0/0, 5e-324}, {dtype = "float64"}),
      ids = ids,
      count = ember.tensor(-7, {dtype = "int32"}),
      pixels = ember.tensor({{0, 255}, {1, 128}}, {dtype = "uint8"}),
      mask = ember.tensor({true, false, true}),
      empty = ember.zeros(0, 3),
      ["conv.weight"] = ember.randn(2, 1, 3, 3),
      ['naïve "name"\n'] = ember.ones(1, {dtype = "float64"}),
      transposed = ember.arange(0, 6, {dtype = "float32"}):reshape(2, 3):t(),
    }
    local meta = {format = "pt", quoted = 'a "b" \\ c\nd\te', unicode = "héllo ✓ 🔥"}
    local p = dir .. "/ember.safetensors"
    ember.save(p, ts, meta)

    local got = assert(load(python("read " .. run.q(p)), "=python", "t"))()
    assert.are.same(meta, got.metadata)
    local seen, prev_size = 0, math.huge
    for _, g in ipairs(got.tensors) do
      local t = ts[g.name]
      assert.is_not_nil(t, "unexpected tensor " .. g.name)
      seen = seen + 1
      assert.are.equal(CODE[t.dtype], g.dtype, g.name)
      assert.are.same(t:shape(), g.shape, g.name)
      same_values(flat(t), g.values, g.name)
      -- the reference writer's order: element sizes never grow
      local size = ({F64 = 8, I64 = 8, F32 = 4, I32 = 4, U8 = 1, BOOL = 1})[g.dtype]
      assert.is_true(size <= prev_size, g.name .. " is out of the reference order")
      prev_size = size
    end
    local n = 0
    for _ in pairs(ts) do n = n + 1 end
    assert.are.equal(n, seen)
  end)

  it("Ember reads a file the Python writer made, with several dtypes and metadata", function()
    local p = dir .. "/python.safetensors"
    python("write " .. run.q(p))
    local t, meta = ember.load(p)
    -- json.dumps wrote the non-ASCII characters as \u escapes (the emoji as
    -- a surrogate pair) and separated with spaces
    assert.are.same({format = "pt", quoted = 'a "b" \\ c\nd\te',
                     unicode = "h\u{e9}llo \u{2713} \u{1f525}"}, meta)
    local want = {
      weight = {"float32", {2, 3}, {0.5, -1.25, f32(3.4028234663852886e38), -0.0, f32(1e-45), 1/0}},
      double = {"float64", {3}, {0.1, -2.5e-300, 0/0}},
      half = {"float16", {2}, {1.5, -65504.0}},                      -- F16, as it is
      ids = {"int64", {3}, {(1 << 53) + 1, math.mininteger, math.maxinteger}},
      count = {"int32", {}, {-7}},
      small = {"int32", {2}, {-32768, 32767}},                      -- I16, widened
      tiny = {"int32", {2}, {-128, 127}},                           -- I8, widened
      pixels = {"uint8", {2, 2}, {0, 255, 1, 128}},
      mask = {"bool", {3}, {true, false, true}},
      empty = {"float32", {0, 4}, {}},
    }
    local n = 0
    for name, w in pairs(want) do
      n = n + 1
      local x = t[name]
      assert.is_not_nil(x, name)
      assert.are.equal(w[1], x.dtype, name)
      assert.are.same(w[2], x:shape(), name)
      if w[1] == "bool" then assert.are.same(w[3], flat(x))
      else same_values(w[3], flat(x), name) end
    end
    for _ in pairs(t) do n = n - 1 end
    assert.are.equal(0, n)
  end)

  -- Written by make_safetensors_fixture.py (torch.manual_seed(0), a Conv2d
  -- layer's weights and a tensor of each dtype), values as Ember holds them.
  local TORCH = {
    ["conv.weight"] = {"float32", {3, 2, 2, 2}, {-0.0026469905860722065, 0.18966144323349, -0.2909903824329376, -0.26019373536109924, -0.13617262244224548, 0.0948079451918602, -0.007005016785115004, 0.28032875061035156, -0.03137575834989548, 0.09355466812849045, -0.10684845596551895, -0.06949635595083237, -0.33776670694351196, -0.23415207862854004, -0.14574287831783295, 0.013096880167722702, 0.13977210223674774, 0.21214008331298828, -0.23968836665153503, -0.15395936369895935, 0.12841664254665375, 0.29358646273612976, -0.07276134938001633, 0.26456815004348755}},
    ["conv.bias"] = {"float32", {3}, {-0.05698692053556442, 0.037410933524370193, 0.3201341927051544}},
    f64 = {"float64", {3}, {0.1, -1e+300, 5e-324}},
    f16 = {"float16", {4}, {0.0999755859375, -65504.0, 5.960464477539063e-08, 1/0}},
    bf16 = {"bfloat16", {3}, {0.10009765625, -3.00405527047391e+38, 1.0}},
    i64 = {"int64", {2, 2}, {4611686018427387904, math.mininteger, 7, -1}},
    i32 = {"int32", {}, {-123456}},
    i16 = {"int32", {2}, {-32768, 32767}},
    i8 = {"int32", {3}, {-128, 127, 0}},
    u8 = {"uint8", {3}, {0, 200, 255}},
    bool = {"bool", {2, 2}, {true, false, false, true}},
    empty = {"float32", {0, 3}, {}},
    transposed = {"float32", {3, 2}, {0.0, 3.0, 1.0, 4.0, 2.0, 5.0}},
  }

  it("Ember reads a file PyTorch wrote with the reference safetensors package", function()
    local t, meta = ember.load(FIXTURE)
    assert.are.same({framework = "torch", torch = "1.13.0"}, meta)
    local n = 0
    for name, w in pairs(TORCH) do
      n = n + 1
      local x = t[name]
      assert.is_not_nil(x, name)
      assert.are.equal(w[1], x.dtype, name)
      assert.are.same(w[2], x:shape(), name)
      if w[1] == "bool" then assert.are.same(w[3], flat(x))
      else same_values(w[3], flat(x), name) end
      assert.is_false(x.requires_grad)
    end
    for _ in pairs(t) do n = n - 1 end
    assert.are.equal(0, n)
    -- the layer's weights drive Ember's conv2d as they would PyTorch's
    local y = ember.conv2d(ember.ones(1, 2, 2, 2), t["conv.weight"], t["conv.bias"])
    assert.are.same({1, 3, 1, 1}, y:shape())
  end)

  it("the PyTorch file saved again by Ember passes the Python reader", function()
    local t = ember.load(FIXTURE)
    local p = dir .. "/again.safetensors"
    ember.save(p, t, {framework = "ember"})
    local got = assert(load(python("read " .. run.q(p)), "=python", "t"))()
    assert.are.same({framework = "ember"}, got.metadata)
    assert.are.equal(13, #got.tensors)
    for _, g in ipairs(got.tensors) do
      assert.are.equal(CODE[TORCH[g.name][1]], g.dtype, g.name)
      assert.are.same(TORCH[g.name][2], g.shape, g.name)
      same_values(flat(t[g.name]), g.values, g.name)
    end
  end)
end)
