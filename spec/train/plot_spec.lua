-- history:plot(path): the PNG it writes, read back chunk by chunk.
local ember = require "ember"
local run = require "helpers.run"
local nn = ember.nn

--- CRC-32 (PNG's: polynomial 0xEDB88320), computed here, not by zlib.
local CRC = {}
for n = 0, 255 do
  local c = n
  for _ = 1, 8 do c = (c & 1 ~= 0) and (0xEDB88320 ~ (c >> 1)) or (c >> 1) end
  CRC[n] = c
end
local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = CRC[(c ~ s:byte(i)) & 0xFF] ~ (c >> 8) end
  return c ~ 0xFFFFFFFF
end

--- The chunks of a PNG: {type, data} in order; asserts every CRC.
local function chunks(png)
  assert.are.equal("\137PNG\r\n\26\n", png:sub(1, 8))
  local out, pos = {}, 9
  while pos <= #png do
    local len, typ = (">I4c4"):unpack(png, pos)
    local data = png:sub(pos + 8, pos + 7 + len)
    local crc = (">I4"):unpack(png, pos + 8 + len)
    assert.are.equal(crc32(typ .. data), crc, typ)
    out[#out + 1] = {typ, data}
    pos = pos + 12 + len
  end
  return out
end

local read = run.read_file

local function history(epochs, val)
  ember.manual_seed(3)
  local x, y = ember.randn(60, 2), ember.randint(1, 2, {60})
  local m = nn.Sequential{nn.Linear(2, 2)}
  m:compile{optimizer = "sgd", loss = "sparse_categorical_crossentropy", metrics = {"accuracy"}}
  return m:fit(x, y, {epochs = epochs, batch_size = 10, verbose = 0,
                      validation_split = val and 0.25 or 0})
end

describe("history:plot", function()
  it("writes a PNG of the curves: signature, CRCs, size, pixels of both colours", function()
    local h = history(6, true)
    local path = os.tmpname()
    assert.are.equal(path, h:plot(path))
    local cs = chunks(read(path))
    os.remove(path)
    assert.are.same({"IHDR", "IDAT", "IEND"}, {cs[1][1], cs[2][1], cs[3][1]})
    local w, hgt, depth, colour = (">I4I4BB"):unpack(cs[1][2])
    assert.are.same({840, 300, 8, 2}, {w, hgt, depth, colour})   -- two panels side by side
    local raw = assert(ember._zlib_inflate(cs[2][2], w * hgt * 3 + hgt))
    assert.are.equal(w * hgt * 3 + hgt, #raw)
    local seen = {}
    for y = 0, hgt - 1 do
      local row = y * (w * 3 + 1)
      assert.are.equal(0, raw:byte(row + 1))   -- filter type none
      for x = 0, w - 1 do
        local r, g, b = raw:byte(row + 2 + 3 * x, row + 4 + 3 * x)
        seen[r * 65536 + g * 256 + b] = true
      end
    end
    assert.is_true(seen[31 * 65536 + 119 * 256 + 180], "train blue")
    assert.is_true(seen[255 * 65536 + 127 * 256 + 14], "validation orange")
    assert.is_true(seen[0], "black axes and text")
  end)

  it("draws one panel per metric, without validation too, and one epoch", function()
    local path = os.tmpname()
    history(1, false):plot(path, {columns = 1})
    local cs = chunks(read(path))
    os.remove(path)
    local w, hgt = (">I4I4"):unpack(cs[1][2])
    assert.are.same({420, 600}, {w, hgt})
    local raw = assert(ember._zlib_inflate(cs[2][2], w * hgt * 3 + hgt))
    assert.falsy(raw:find("\255\127\14", 1, true))   -- no orange without validation
    assert.truthy(raw:find("\31\119\180", 1, true))
  end)

  it("refuses bad arguments", function()
    local h = history(1, false)
    assert.error_matches(function() h:plot() end, "plot: expected a file name")
    assert.error_matches(function() h:plot("/tmp/x.png", {colums = 2}) end, "plot: .*colums")
    assert.error_matches(function() h:plot("/tmp/x.png", {columns = 0}) end, "plot: .*columns")
    assert.error_matches(function() h:plot("/nonexistent/dir/x.png") end,
                         "plot: cannot write '/nonexistent/dir/x.png'")
  end)

  it("writes through a temporary beside the file, removed when the write fails", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir .. "/curves.png/inside"))
    local path = dir .. "/curves.png"   -- a directory: the rename over it fails
    local ok, err = pcall(function() history(2, false):plot(path) end)
    local left = io.popen("ls " .. dir):read("a")
    os.execute("rm -rf " .. dir)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("plot: cannot write '" .. path .. "'", 1, true), err)
    assert.truthy(tostring(err):find("plot_spec.lua:", 1, true), err)   -- the caller's line
    assert.are.equal("curves.png\n", left)                           -- no temporary left
    local good = os.tmpname()
    history(2, false):plot(good)
    local f = assert(io.open(good, "rb")); local png = f:read("a"); f:close()
    os.remove(good)
    assert.are.equal("\137PNG", png:sub(1, 4))
  end)
end)

describe("ember._png_encode", function()
  it("checks its sizes", function()
    assert.error_matches(function() ember._png_encode(2, 2, "abc") end, "expected 12 bytes of RGB, got 3")
    assert.error_matches(function() ember._png_encode(0, 2, "") end, "out of range")
    local cs = chunks(ember._png_encode(1, 1, "\1\2\3"))
    assert.are.equal("\0\1\2\3", ember._zlib_inflate(cs[2][2], 4))
  end)
end)
