-- data.read_idx: IDX files of every type, plain and gzipped, the checks on
-- damaged files, and the real Fashion-MNIST files.
local ember = require "ember"
local run = require "helpers.run"
local data = ember.data

local FASHION = "/usr/share/datasets/fashion-mnist/"

-- {======================================================================
-- Writing IDX files
-- =======================================================================

local dir

local function path(name) return dir .. "/" .. name end

local function write(name, bytes)
  run.write_file(path(name), bytes)
  return path(name)
end

local read = run.read_file

--- The header: magic, type, rank, big-endian dims.
local function header(code, dims, ndim)
  local parts = {string.pack(">BBBB", 0, 0, code, ndim or #dims)}
  for _, d in ipairs(dims) do parts[#parts + 1] = string.pack(">I4", d) end
  return table.concat(parts)
end

--- A whole file: header then the values packed with fmt (big-endian).
local function idx(code, dims, values, fmt)
  local parts = {header(code, dims)}
  for _, v in ipairs(values) do parts[#parts + 1] = string.pack(fmt, v) end
  return table.concat(parts)
end

--- name.gz next to name (gzip -k keeps the plain file).
local function gzip(p)
  os.remove(p .. ".gz")
  assert(os.execute("gzip -k -n " .. "'" .. p .. "'"))
  return p .. ".gz"
end

--- n varied bytes (an LCG), so that deflate makes real Huffman blocks.
local function varied(n)
  local parts, s = {}, 12345
  for i = 1, n do
    s = (s * 1103515245 + 12345) % 2147483648
    parts[i] = string.char((s >> 16) % 7 * 30)
  end
  return table.concat(parts)
end

--- The message of a failing read_idx.
local function err(p)
  local ok, msg = pcall(data.read_idx, p)
  assert.is_false(ok, "read_idx should have failed on " .. p)
  return msg
end

-- }======================================================================

describe("data.read_idx", function()
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p '" .. dir .. "'"))
  end)

  teardown(function()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  describe("reads every type", function()
    local cases = {
      {name = "uint8", code = 0x08, fmt = ">B", dtype = "uint8",
       values = {0, 1, 127, 128, 254, 255}},
      {name = "int8", code = 0x09, fmt = ">b", dtype = "int32",
       values = {-128, -1, 0, 1, 100, 127}},
      {name = "int16", code = 0x0B, fmt = ">i2", dtype = "int32",
       values = {-32768, -2, 0, 258, 1000, 32767}},
      {name = "int32", code = 0x0C, fmt = ">i4", dtype = "int32",
       values = {-2147483648, -65536, 0, 16909060, 7, 2147483647}},
      {name = "float32", code = 0x0D, fmt = ">f", dtype = "float32",
       values = {1.5, -2.25, 0, 1e-3, 3.0e38, -0.5}},
      {name = "float64", code = 0x0E, fmt = ">d", dtype = "float64",
       values = {math.pi, -1e300, 0, 2^-1070, 1 / 3, -7}},
    }
    for _, c in ipairs(cases) do
      it(c.name .. ", plain and gzipped, [2,3]", function()
        local p = write(c.name .. ".idx", idx(c.code, {2, 3}, c.values, c.fmt))
        for _, file in ipairs{p, gzip(p)} do
          local t = data.read_idx(file)
          assert.are.equal(c.dtype, t.dtype)
          assert.are.same({2, 3}, t:shape())
          local flat = t:view(6):totable()
          for i, v in ipairs(c.values) do
            -- float32 values go through float32 in the file
            local want = c.fmt == ">f" and string.unpack(">f", string.pack(">f", v)) or v
            assert.are.equal(want, flat[i], ("%s element %d of %s"):format(c.name, i, file))
          end
        end
      end)
    end

    it("one to eight dimensions, and a size-0 dimension", function()
      local t = data.read_idx(write("d1.idx", idx(0x08, {4}, {9, 8, 7, 6}, ">B")))
      assert.are.same({4}, t:shape())
      assert.are.same({9, 8, 7, 6}, t:totable())
      local dims8 = {1, 2, 1, 1, 1, 1, 1, 2}
      t = data.read_idx(write("d8.idx", idx(0x0C, dims8, {1, 2, 3, 4}, ">i4")))
      assert.are.same(dims8, t:shape())
      assert.are.same({1, 2, 3, 4}, t:view(4):totable())
      t = data.read_idx(write("d0.idx", header(0x0D, {0, 5})))
      assert.are.same({0, 5}, t:shape())
      assert.are.equal("float32", t.dtype)
    end)

    it("a fresh contiguous tensor", function()
      local p = write("fresh.idx", idx(0x08, {2, 2}, {1, 2, 3, 4}, ">B"))
      local a, b = data.read_idx(p), data.read_idx(p)
      assert.is_true(a:is_contiguous())
      a[1][1] = 100
      assert.are.equal(1, b[1][1])
    end)
  end)

  describe("damaged files", function()
    it("truncated data, plain and gzipped", function()
      local p = write("short.idx", header(0x08, {10}) .. "\1\2\3\4")
      assert.are.equal(("read_idx: '%s' is truncated: expected 10 bytes of data, got 4")
                       :format(p), err(p))
      local gz = gzip(p)
      assert.are.equal(("read_idx: '%s' is truncated: expected 10 bytes of data, got 4")
                       :format(gz), err(gz))
      p = write("short32.idx", header(0x0C, {2, 3}) .. ("\0"):rep(10))
      assert.are.equal(("read_idx: '%s' is truncated: expected 24 bytes of data, got 10")
                       :format(p), err(p))
    end)

    it("a gzip stream cut short", function()
      local p = write("cut.idx", header(0x08, {20000}) .. varied(20000))
      local gz = read(gzip(p))
      local cut = write("cut.gz", gz:sub(1, #gz // 2))
      local msg = err(cut)
      local got = tonumber(msg:match("^read_idx: '" .. cut:gsub("%p", "%%%0") ..
                                     "' is truncated: expected 20000 bytes of data, got (%d+)$"))
      assert.truthy(got, msg)
      assert.is_true(got > 0 and got < 20000, msg)
    end)

    it("a truncated header", function()
      local p = write("h3.idx", "\0\0\8")
      assert.are.equal(("read_idx: '%s' is truncated: expected a 4-byte header, got 3 bytes")
                       :format(p), err(p))
      p = write("h.idx", header(0x08, {28, 28}, 3))
      assert.are.equal(("read_idx: '%s' is truncated: expected a 16-byte header, got 12 bytes")
                       :format(p), err(p))
      p = write("empty.idx", "")
      assert.truthy(err(p):find("expected a 4-byte header, got 0 bytes", 1, true))
    end)

    it("extra bytes after the data, plain and gzipped", function()
      local p = write("long.idx", idx(0x08, {2, 3}, {1, 2, 3, 4, 5, 6, 7, 8}, ">B"))
      assert.are.equal(("read_idx: '%s' has 2 extra bytes after the expected 6 bytes of data")
                       :format(p), err(p))
      local gz = gzip(p)
      assert.are.equal(("read_idx: '%s' has 2 extra bytes after the expected 6 bytes of data")
                       :format(gz), err(gz))
    end)

    it("a bad magic, an unknown type, a bad rank", function()
      local p = write("magic.idx", "\1\0\8\1" .. string.pack(">I4", 1) .. "\0")
      assert.are.equal(("read_idx: '%s' is not an IDX file: expected it to start with " ..
                        "the bytes 00 00, got 01 00"):format(p), err(p))
      p = write("text.idx", "hello, world")
      assert.truthy(err(p):find("is not an IDX file", 1, true))
      p = write("type.idx", header(0x0A, {1}) .. "\0")
      assert.are.equal(("read_idx: '%s' has an unknown data type 0x0A (expected 0x08, " ..
                        "0x09, 0x0B, 0x0C, 0x0D or 0x0E)"):format(p), err(p))
      p = write("rank0.idx", header(0x08, {}))
      assert.are.equal(("read_idx: '%s' has 0 dimensions, expected 1 to 8"):format(p), err(p))
      p = write("rank9.idx", header(0x08, {1, 1, 1, 1, 1, 1, 1, 1, 1}) .. "\0")
      assert.are.equal(("read_idx: '%s' has 9 dimensions, expected 1 to 8"):format(p), err(p))
    end)

    it("a huge shape is refused before anything is allocated", function()
      local before = ember.memory_allocated()
      -- 2^16 * 2^16 * 2 bytes = 8 GiB, over the 4 GiB bound (gzipped: no
      -- file length to compare with, so the bound itself must catch it)
      local gz = gzip(write("huge.idx", header(0x08, {65536, 65536, 2})))
      assert.are.equal(("read_idx: '%s' declares a shape [65536,65536,2] of more than " ..
                        "4294967296 bytes of data, which is over the limit"):format(gz), err(gz))
      -- a product that overflows 64 bits
      local max = 0xFFFFFFFF
      local p = write("overflow.idx", header(0x0E, {max, max, max, max, max, max, max, max}))
      assert.truthy(err(p):find("declares a shape [4294967295,", 1, true))
      -- within the bound but longer than the plain file: its length is checked first
      p = write("claims.idx", header(0x0E, {1024, 1024, 64}))
      assert.are.equal(("read_idx: '%s' is truncated: expected 536870912 bytes of data, got 0")
                       :format(p), err(p))
      assert.are.equal(before, ember.memory_allocated())
    end)

    it("a corrupt gzip stream reports zlib's reason", function()
      local gz = read(gzip(write("rand.idx", header(0x08, {20000}) .. varied(20000))))
      local function flipped(at)
        return gz:sub(1, at) .. string.char(gz:byte(at + 1) ~ 0xFF, gz:byte(at + 2) ~ 0x55)
               .. gz:sub(at + 3)
      end
      local p = write("corrupt.gz", flipped(#gz // 2))
      local msg = err(p)
      assert.truthy(msg:find("read_idx: '" .. p .. "' is corrupt (gzip): ", 1, true), msg)
      assert.is_nil(msg:find("<fd:", 1, true), msg)
      -- the CRC in the trailer (8 bytes from the end): zlib's data check
      p = write("crc.gz", flipped(#gz - 8))
      assert.are.equal(("read_idx: '%s' is corrupt (gzip): incorrect data check"):format(p),
                       err(p))
    end)

    it("a missing file, a directory, a bad argument", function()
      local p = path("no-such-file.gz")
      assert.are.equal(("read_idx: cannot open '%s': No such file or directory"):format(p),
                       err(p))
      assert.are.equal(("read_idx: cannot read '%s': it is a directory"):format(dir), err(dir))
      assert.are.equal("read_idx: expected a file name (a string), got nil",
                       select(2, pcall(data.read_idx)))
      assert.are.equal("read_idx: expected a file name (a string), got a table",
                       select(2, pcall(data.read_idx, {})))
    end)

    it("blames the caller's line", function()
      local ok, msg = pcall(function() data.read_idx(path("missing")) end)
      assert.is_false(ok)
      assert.truthy(msg:match("^[^:]*idx_spec%.lua:%d+: read_idx: cannot open"), msg)
    end)
  end)

  describe("the Fashion-MNIST files", function()
    it("t10k labels: uint8 [10000], 0..9, starting 9 2 1 1 6", function()
      local y = data.read_idx(FASHION .. "t10k-labels-idx1-ubyte.gz")
      assert.are.equal("uint8", y.dtype)
      assert.are.same({10000}, y:shape())
      assert.are.equal(0, y:min():item())
      assert.are.equal(9, y:max():item())
      assert.are.same({9, 2, 1, 1, 6}, y:narrow(1, 1, 5):totable())
      -- ten classes of 1000 each
      for c = 0, 9 do assert.are.equal(1000, y:eq(c):sum():item()) end
    end)

    it("train labels start 9 0 0 3 0", function()
      local y = data.read_idx(FASHION .. "train-labels-idx1-ubyte.gz")
      assert.are.same({60000}, y:shape())
      assert.are.same({9, 0, 0, 3, 0}, y:narrow(1, 1, 5):totable())
    end)

    it("t10k images: uint8 [10000,28,28] with the bytes Python's gzip reads", function()
      local x = data.read_idx(FASHION .. "t10k-images-idx3-ubyte.gz")
      assert.are.equal("uint8", x.dtype)
      assert.are.same({10000, 28, 28}, x:shape())
      -- sums computed with Python's gzip module over the same file
      assert.are.equal(33456, x[1]:long():sum():item())
      assert.are.equal(255, x[1]:max():item())
      assert.are.equal(573469082, x:long():sum():item())
    end)
  end)
end)
