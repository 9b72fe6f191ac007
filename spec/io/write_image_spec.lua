-- data.write_image (lua/ember/data_image.lua, ember._png_encode in
-- bindings/lua_io.c): PNG files that data.read_image (libpng) reads back as
-- written: uint8 exactly, floats within half a step of 1/255.
local ember = require "ember"
local data = ember.data

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))

local function path(name) return dir .. "/" .. name end

local function read_bytes(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function max_diff(a, b)
  return (a:to("float64") - b:to("float64")):abs():max():item()
end

local function bytes_of(x) -- what read_image gives, as 0..255 integers
  return (x * 255):round():to("int64")
end

teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

describe("data.write_image", function()
  it("round-trips RGB uint8 exactly", function()
    local x = (ember.rand({3, 5, 7}) * 256):floor():clamp(0, 255):to("uint8")
    assert.equal(path("rgb.png"), data.write_image(path("rgb.png"), x))
    local y = data.read_image(path("rgb.png"))
    assert.same({3, 5, 7}, y:size())
    assert.equal(0, max_diff(bytes_of(y), x))
  end)

  it("round-trips grey C=1 and H x W uint8 as 1-channel PNGs", function()
    local x = ember.arange(0, 256):reshape({1, 16, 16}):to("uint8")
    data.write_image(path("grey.png"), x)
    local png = read_bytes(path("grey.png"))
    assert.equal(0, png:byte(26))   -- IHDR colour type 0: grey
    assert.equal(0, max_diff(bytes_of(data.read_image(path("grey.png"), {channels = 1})), x))
    data.write_image(path("hw.png"), x[1])
    assert.equal(png, read_bytes(path("hw.png")))
    -- read as RGB, grey is copied into the three channels
    local rgb = data.read_image(path("hw.png"))
    assert.same({3, 16, 16}, rgb:size())
    assert.equal(0, max_diff(bytes_of(rgb[3]), x[1]))
  end)

  it("scales floats from [0, 1], clamps and rounds (every float dtype)", function()
    for _, dt in ipairs({"float32", "float64", "float16", "bfloat16"}) do
      local x = ember.rand({3, 6, 4}):to(dt)
      data.write_image(path("f.png"), x)
      local y = data.read_image(path("f.png"))
      assert.is_true(max_diff(y, x) <= 0.5 / 255 + 1e-6, dt)
    end
    local x = ember.tensor({{-1, 0, 0.5 / 255, 0.4999}, {0.5, 1, 2, 1 / 0}})
    data.write_image(path("c.png"), x)
    local y = bytes_of(data.read_image(path("c.png"), {channels = 1}))
    -- x * 255 + 0.5, floored (torchvision's save_image)
    assert.same({{{0, 0, 1, 127}, {128, 255, 255, 255}}}, y:totable())
  end)

  it("takes non-contiguous, requires_grad and single-pixel tensors", function()
    local x = ember.rand({3, 7, 5}, {requires_grad = true})
    data.write_image(path("t.png"), x:transpose(2, 3))
    local y = data.read_image(path("t.png"))
    assert.same({3, 5, 7}, y:size())
    assert.is_true(max_diff(y, x:detach():transpose(2, 3)) <= 0.5 / 255 + 1e-6)
    -- a contiguous view that starts inside its storage
    local g = ember.arange(0, 60):reshape({6, 10}):to("uint8")
    data.write_image(path("rows.png"), g:narrow(1, 3, 2))
    assert.equal(0, max_diff(bytes_of(data.read_image(path("rows.png"), {channels = 1}))[1],
                             g:narrow(1, 3, 2)))
    -- stride-0 (expanded) tensors
    data.write_image(path("e.png"), ember.tensor({{{0}}, {{1}}, {{0}}}):expand(3, 2, 5))
    assert.same({{0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}}, bytes_of(data.read_image(path("e.png")))[3]:totable())
    data.write_image(path("one.png"), ember.ones({1, 1}))
    assert.same({{{1}}}, data.read_image(path("one.png"), {channels = 1}):totable())
  end)

  it("compression changes the size of the file, not the pixels", function()
    local x = ember.zeros({3, 64, 64})
    data.write_image(path("z0.png"), x, {compression = 0})
    data.write_image(path("z9.png"), x, {compression = 9})
    assert.is_true(#read_bytes(path("z0.png")) > #read_bytes(path("z9.png")))
    assert.equal(0, max_diff(data.read_image(path("z0.png")), data.read_image(path("z9.png"))))
  end)

  it("replaces a file atomically and leaves no temporary behind", function()
    data.write_image(path("r.png"), ember.zeros({2, 2}))
    data.write_image(path("r.png"), ember.ones({3, 4, 4}))
    assert.same({3, 4, 4}, data.read_image(path("r.png")):size())
    local p = io.popen("ls '" .. dir .. "'")
    local names = p:read("a")
    p:close()
    assert.is_nil(names:find("tmp", 1, true))
  end)

  it("refuses bad input, naming the function, and writes nothing", function()
    local old = path("keep.png")
    data.write_image(old, ember.zeros({2, 2}))
    local before = read_bytes(old)
    local cases = {
      {{old, ember.rand({2, 3, 3})}, "x has 2 channels %(dim 1%), expected 1 %(grey%) or 3 %(RGB%)"},
      {{old, ember.rand({3})}, "got 1 dimensions %(3%)"},
      {{old, ember.rand({1, 3, 3, 3})}, "got 4 dimensions %(1x3x3x3%)"},
      {{old, ember.zeros({3, 3}, {dtype = "int64"})}, "float tensor %(values in %[0, 1%]%) or uint8, got int64"},
      {{old, ember.zeros({3, 3}, {dtype = "bool"})}, "or uint8, got bool"},
      {{old, ember.zeros({0, 3})}, "an image of 0x3 cannot be written"},
      {{old, ember.zeros({3, 20000, 1})}, "an image of 20000x1 cannot be written"},
      {{old, ember.tensor({{0, 0 / 0}})}, "x holds NaN"},
      {{old, {{0, 1}}}, "x must be a tensor, got a table"},
      {{old, ember.zeros({2, 2}), {compresion = 1}}, "unknown option 'compresion'"},
      {{old, ember.zeros({2, 2}), {compression = 10}}, "compression must be 0 to 9, got 10"},
      {{old, ember.zeros({2, 2}), {compression = -1}}, "compression must be >= 0"},
      {{old, ember.zeros({2, 2}), {compression = 1.5}}, "compression must be an integer"},
      {{old, ember.zeros({2, 2}), 3}, "options must be a table"},
      {{5, ember.zeros({2, 2})}, "path must be a string"},
      {{"a\0b.png", ember.zeros({2, 2})}, "the path contains a zero byte"},
    }
    for _, c in ipairs(cases) do
      assert.error_matches(function() data.write_image(table.unpack(c[1], 1, 3)) end,
                           "write_image: .*" .. c[2])
    end
    assert.equal(before, read_bytes(old))
    assert.error_matches(function() data.write_image(dir .. "/no/such/dir/x.png", ember.zeros({2, 2})) end,
      "write_image: cannot write '" .. dir:gsub("%p", "%%%0") .. "/no/such/dir/x%.png': No such file")
    assert.error_matches(function() data.write_image(dir, ember.zeros({2, 2})) end,
      "write_image: cannot write '" .. dir:gsub("%p", "%%%0") .. "'")
    local p = io.popen("ls '" .. dir .. "'")
    local names = p:read("a")
    p:close()
    assert.is_nil(names:find("tmp", 1, true))
  end)
end)
