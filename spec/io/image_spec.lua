-- data.read_image and data.image_folder (core/io_image.c,
-- lua/ember/data_image.lua) against PIL's decoding and torch's bilinear
-- resize (spec/reference/make_image_reference.py writes the fixture folder
-- spec/fixtures/images and spec/reference/image_values.lua).  PNG must
-- match exactly (to float rounding); JPEG within 3/255, as IDCTs differ.
local ember = require "ember"
local run = require "helpers.run"
local REF = dofile("spec/reference/image_values.lua")

local DIR = "spec/fixtures/images"
local data = ember.data

local function close(got, want, tol, what)
  local flat = got:reshape({-1}):totable()
  assert.equal(#want, #flat, what .. ": size")
  for k = 1, #want do
    if math.abs(flat[k] - want[k]) > tol then
      error(("%s: element %d is %.7f, expected %.7f"):format(what, k, flat[k], want[k]))
    end
  end
end

local function tol(f) return f.jpeg and 3 / 255 + 1e-6 or 1e-6 end

local write = run.write_file

local function copy(from, to)
  local f = assert(io.open(from, "rb"))
  write(to, f:read("a"))
  f:close()
end

describe("data.read_image", function()
  for _, f in ipairs(REF.files) do
    it("decodes " .. f.path .. " as PIL does (RGB and grey, native size)", function()
      local x = data.read_image(DIR .. "/" .. f.path)
      assert.equal("float32", x.dtype)
      assert.same({3, f.h, f.w}, x:shape())
      close(x, f.rgb, tol(f), f.path .. " rgb")
      local g = data.read_image(DIR .. "/" .. f.path, {channels = 1})
      assert.same({1, f.h, f.w}, g:shape())
      close(g, f.grey, tol(f), f.path .. " grey")
    end)
    it("resizes " .. f.path .. " as torch's bilinear interpolate", function()
      local x = data.read_image(DIR .. "/" .. f.path, {size = REF.size})
      assert.same({3, REF.size[1], REF.size[2]}, x:shape())
      close(x, f.rgb_resized, tol(f), f.path .. " rgb resized")
      local g = data.read_image(DIR .. "/" .. f.path, {size = REF.size, channels = 1})
      close(g, f.grey_resized, tol(f), f.path .. " grey resized")
    end)
  end

  it("tells the format by its magic bytes, not the name", function()
    local tmp = run.tmpdir()
    copy(DIR .. "/cat/a.png", tmp .. "/really_png.jpg")
    local ok, x = pcall(data.read_image, tmp .. "/really_png.jpg")
    run.rmdir(tmp)
    assert(ok, x)
    close(x, REF.files[1].rgb, 1e-6, "png named .jpg")
  end)

  it("a JPEG cut short is refused, even by its end marker alone (as PIL)", function()
    local f = assert(io.open(DIR .. "/cat/b.jpg", "rb"))
    local bytes = f:read("a")
    f:close()
    assert.equal("\255\217", bytes:sub(-2))
    local tmp = run.tmpdir()
    local errs = {}
    for _, cut in ipairs({2, 40}) do
      local p = ("%s/cut%d.jpg"):format(tmp, cut)
      write(p, bytes:sub(1, -cut - 1))
      local ok, err = pcall(data.read_image, p)
      errs[#errs + 1] = {ok, tostring(err), p}
    end
    run.rmdir(tmp)
    for _, e in ipairs(errs) do
      assert.is_false(e[1])
      assert.truthy(e[2]:find("read_image: '" .. e[3] .. "' is truncated (JPEG data ends early)", 1,
                              true), e[2])
    end
  end)

  it("the same size gives the pixels unchanged", function()
    local f = REF.files[1]
    close(data.read_image(DIR .. "/" .. f.path, {size = {f.h, f.w}}), f.rgb, 1e-6, "same size")
  end)

  it("an image wider than 2^23 keeps every pixel at its own place (no read past the row)", function()
    -- float coordinates round there: (x + 0.5) - 0.5 can land on x + 1,
    -- and the last column on the one past the row
    local tmp = run.tmpdir()
    local path = tmp .. "/wide.png"
    local out, rc = run.sh("python3 -c " .. run.q([[
import struct, sys, zlib
def chunk(k, d): return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
w = 1 << 24
row = bytearray(w + 1)
row[1 + (1 << 23) + 1] = 100
row[w] = 200
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" +
  chunk(b"IHDR", struct.pack(">IIBBBBB", w, 1, 8, 0, 0, 0, 0)) +
  chunk(b"IDAT", zlib.compress(bytes(row), 9)) + chunk(b"IEND", b""))
]]) .. " " .. run.q(path))
    local ok, err = pcall(function()
      assert.equal(0, rc, out)
      local v = data.read_image(path, {channels = 1}):view(-1)
      local n = v:numel()
      assert.equal(1 << 24, n)
      assert.equal(100, math.floor(v[(1 << 23) + 2] * 255 + 0.5))
      assert.equal(0, math.floor(v[(1 << 23) + 3] * 255 + 0.5))
      assert.equal(200, math.floor(v[n] * 255 + 0.5))
    end)
    run.rmdir(tmp)
    assert(ok, err)
  end)

  it("refuses a named pipe at once instead of waiting for a writer", function()
    local tmp = run.tmpdir()
    local path = tmp .. "/pipe.png"
    local _, rc = run.sh("mkfifo " .. run.q(path))
    local ok, err = pcall(function()
      assert.equal(0, rc)
      local ok2, e = pcall(data.read_image, path)
      assert.is_false(ok2)
      assert.truthy(tostring(e):find("is not a regular file", 1, true), tostring(e))
    end)
    run.rmdir(tmp)
    assert(ok, err)
  end)

  it("gives clear errors for bad arguments and files", function()
    local function fails(words, ...)
      local ok, err = pcall(data.read_image, ...)
      assert.is_false(ok)
      for _, w in ipairs(words) do
        assert.truthy(tostring(err):find(w, 1, true), ("%q lacks %q"):format(tostring(err), w))
      end
    end
    fails({"read_image: path must be a string"}, 3)
    fails({"read_image: unknown option 'sizes'", "did you mean 'size'"}, DIR .. "/cat/a.png",
          {sizes = {2, 2}})
    fails({"read_image: channels must be 1 (grey) or 3 (RGB), got 4"}, DIR .. "/cat/a.png",
          {channels = 4})
    fails({"read_image: size must be a table {h, w}"}, DIR .. "/cat/a.png", {size = 3})
    fails({"read_image: size[2]"}, DIR .. "/cat/a.png", {size = {2, 0}})
    fails({"read_image: size {65536, 65536} is more than the limit of 268435456 pixels"},
          DIR .. "/cat/a.png", {size = {65536, 65536}})
    fails({"read_image: 'nope.png' cannot be opened", "No such file"}, "nope.png")
    fails({"read_image: '" .. DIR .. "' is not a regular file"}, DIR)
    fails({"read_image: '" .. DIR .. "/dog/notes.txt' is not a PNG or JPEG file"},
          DIR .. "/dog/notes.txt")
    fails({"read_image: 'spec/fixtures/images_extra/cmyk.jpg' is a CMYK JPEG, which is not supported"},
          "spec/fixtures/images_extra/cmyk.jpg")
  end)

  it("blames the caller's line for a bad size", function()
    for _, size in ipairs{{0, 2}, {2, 1.5}} do
      local ok, err = pcall(function()
        local x = data.read_image(DIR .. "/cat/a.png", {size = size})
        return x
      end)
      assert.is_false(ok)
      assert.matches("^spec/io/image_spec%.lua:%d+: read_image: size%[%d%] must be", err)
    end
  end)
end)

describe("data.image_folder", function()
  it("labels from the sorted folder names, samples sorted by path", function()
    local ds = data.image_folder(DIR, {size = {4, 5}})
    assert.same({"cat", "dog"}, ds.classes)
    assert.equal(#REF.files, #ds)
    for i, f in ipairs(REF.files) do
      assert.equal(DIR .. "/" .. f.path, ds.samples[i])
    end
    assert.same({1, 1, 1, 2, 2, 2, 2, 2}, ds.labels)
    assert.equal("ImageFolder(8 images, 2 classes, 3 channels, 4x5)", tostring(ds))
  end)

  it("ds[i] and ds:get(i) give x (C x H x W in [0, 1]) and y", function()
    local ds = data.image_folder(DIR, {size = REF.size, channels = 1})
    for i, f in ipairs(REF.files) do
      local x, y = ds:get(i)
      assert.same({1, REF.size[1], REF.size[2]}, x:shape())
      close(x, f.grey_resized, tol(f), f.path)
      assert.equal(f.path:match("^cat") and 1 or 2, y)
      assert.equal(y, ds[i][2])
    end
    assert.has_error(function() return ds[9] end, "image_folder: index 9 is out of range 1..8")
  end)

  it("ds:batch decodes a batch in one call, as the items stacked", function()
    local ds = data.image_folder(DIR, {size = REF.size})
    local x, y = ds:batch({7, 1, 4})
    assert.same({3, 3, REF.size[1], REF.size[2]}, x:shape())
    assert.equal("int64", y.dtype)
    assert.same({2, 1, 2}, y:totable())
    for k, i in ipairs({7, 1, 4}) do
      close(x[k], REF.files[i].rgb_resized, tol(REF.files[i]), "batch item " .. k)
    end
    local x2 = ds:batch(ember.tensor({2, 3}, {dtype = "int64"}))
    assert.same({2, 3, REF.size[1], REF.size[2]}, x2:shape())
  end)

  it("data.loader draws whole batches through ds:batch, and fit trains on it", function()
    local ds = data.image_folder(DIR, {size = {4, 4}})
    local calls = 0
    local batch = getmetatable(ds).batch
    local loader = data.loader(ds, {batch_size = 3})
    local mt = getmetatable(ds)
    mt.batch = function(...) calls = calls + 1; return batch(...) end
    local ok, err = pcall(function()
      local sizes = {}
      for xb, yb in loader do
        sizes[#sizes + 1] = xb:size(1)
        assert.equal(xb:size(1), yb:size(1))
      end
      assert.same({3, 3, 2}, sizes)
      assert.equal(3, calls)
    end)
    mt.batch = batch
    assert(ok, err)
    local nn = ember.nn
    local model = nn.Sequential{nn.Flatten(), nn.Linear(3 * 4 * 4, 2)}
    model:compile{optimizer = "sgd", loss = "sparse_categorical_crossentropy"}
    local h = model:fit(data.loader(ds, {batch_size = 4, shuffle = true, seed = 1}),
                        {epochs = 2, verbose = 0})
    assert.equal(2, #h.loss)
    assert.truthy(model:evaluate(data.loader(ds, {batch_size = 4}), {verbose = 0}))
    assert.same({#ds, 2}, model:predict(data.loader(ds, {batch_size = 3}), {verbose = 0}):shape())
    -- a Subset of the folder batches item by item (no batch method)
    local part = data.random_split(ds, {6, 2}, {seed = 1})
    local n = 0
    for xb in data.loader(part, {batch_size = 4}) do n = n + xb:size(1) end
    assert.equal(6, n)
  end)

  it("without a size, items keep theirs and a batch needs equal sizes", function()
    local ds = data.image_folder(DIR)
    assert.same({3, 5, 7}, ds[1][1]:shape())
    assert.has_error(function() ds:batch({1, 2}) end,
      "image_folder: '" .. DIR .. "/cat/a.png' is 5x7 but '" .. DIR ..
      "/cat/b.jpg' is 6x8; give {size = {h, w}} to batch images of different sizes")
  end)

  it("extensions choose the files (case-insensitive)", function()
    local ds = data.image_folder(DIR, {extensions = {".JPG"}})
    assert.same({DIR .. "/cat/b.jpg", DIR .. "/dog/c.jpg"}, ds.samples)
  end)

  it("gives clear errors naming the folder or the file", function()
    local tmp = run.tmpdir()
    local ok, err = pcall(function()
      assert.has_error(function() data.image_folder(tmp) end,
        "image_folder: '" .. tmp .. "' has no class folders (expected one subfolder of images per class)")
      os.execute("mkdir " .. run.q(tmp .. "/a") .. " " .. run.q(tmp .. "/b"))
      copy(DIR .. "/cat/a.png", tmp .. "/a/x.png")
      assert.has_error(function() data.image_folder(tmp) end,
        "image_folder: the class folder '" .. tmp .. "/b' has no images (files ending in .png, .jpg, .jpeg)")
      write(tmp .. "/b/bad.png", "\137PNG\r\n\26\n" .. ("\0"):rep(10))
      local ds = data.image_folder(tmp, {size = {2, 2}})
      local e1 = select(2, pcall(function() return ds[2] end))
      assert.truthy(tostring(e1):find("image_folder: '" .. tmp .. "/b/bad.png' is", 1, true), tostring(e1))
      local e2 = select(2, pcall(ds.batch, ds, {1, 2}))
      assert.truthy(tostring(e2):find("image_folder: '" .. tmp .. "/b/bad.png' is", 1, true), tostring(e2))
    end)
    run.rmdir(tmp)
    assert(ok, err)
    assert.has_error(function() data.image_folder(DIR .. "/nope") end,
      "image_folder: cannot read the directory '" .. DIR .. "/nope': No such file or directory")
    assert.has_error(function() data.image_folder(DIR, {extensions = {}}) end)
    assert.has_error(function() data.image_folder(DIR, {channel = 1}) end)
  end)
end)
