-- data.fashion_mnist and data.mnist: shapes, dtypes, ranges, labels shifted
-- to 1..10, the limit option, and the errors for missing or bad files.
local ember = require "ember"
local data = ember.data
local run = require "helpers.run"

local FASHION_CLASSES = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

-- {======================================================================
-- A small MNIST-like folder
-- =======================================================================

local mkdir_temp = run.tmpdir

local write = run.write_file

local function header(code, dims)
  local parts = {string.pack(">BBBB", 0, 0, code, #dims)}
  for _, d in ipairs(dims) do parts[#parts + 1] = string.pack(">I4", d) end
  return table.concat(parts)
end

--- Image k's pixel j (both from 1): a pattern that tells images apart.
local function pixel(k, j) return (k * 37 + j) % 256 end

local function images(n, h, w)
  local parts = {header(0x08, {n, h or 28, w or 28})}
  for k = 1, n do
    local row = {}
    for j = 1, (h or 28) * (w or 28) do row[j] = string.char(pixel(k, j)) end
    parts[#parts + 1] = table.concat(row)
  end
  return table.concat(parts)
end

local function labels(list)
  return header(0x08, {#list}) .. string.char(table.unpack(list))
end

--- A folder with the four files: train (5 samples) gzipped, test (3) plain.
local function mnist_dir()
  local d = mkdir_temp()
  write(d .. "/train-images-idx3-ubyte", images(5))
  write(d .. "/train-labels-idx1-ubyte", labels{5, 0, 4, 1, 9})
  assert(os.execute("gzip -n '" .. d .. "/train-images-idx3-ubyte' '" ..
                    d .. "/train-labels-idx1-ubyte'"))
  write(d .. "/t10k-images-idx3-ubyte", images(3))
  write(d .. "/t10k-labels-idx1-ubyte", labels{7, 2, 1})
  return d
end

local rm = run.rmdir

local function message(fn, ...)
  local ok, msg = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return msg
end

-- }======================================================================

describe("data.fashion_mnist", function()
  it("limit: the first n of each split, float32 [n,1,28,28] in [0,1], int64 1..10", function()
    local train, test = data.fashion_mnist{limit = 3000}
    assert.are.same({3000, 1, 28, 28}, train.x:shape())
    assert.are.same({3000}, train.y:shape())
    assert.are.same({3000, 1, 28, 28}, test.x:shape())
    assert.are.equal("float32", train.x.dtype)
    assert.are.equal("int64", train.y.dtype)
    assert.are.equal(0, train.x:min():item())
    assert.are.equal(1, train.x:max():item())
    assert.are.equal(1, train.y:min():item())
    assert.are.equal(10, train.y:max():item())
    assert.are.same(FASHION_CLASSES, train.classes)
    assert.are.same(FASHION_CLASSES, test.classes)
    assert.are.equal("Ankle boot", train.classes[train.y[1]])
    -- the files' labels start 9 0 0 3 0 (train) and 9 2 1 1 6 (test)
    assert.are.same({10, 1, 1, 4, 1}, train.y:narrow(1, 1, 5):totable())
    assert.are.same({10, 3, 2, 2, 7}, test.y:narrow(1, 1, 5):totable())
    -- pixels are the file's bytes / 255
    local raw = data.read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    local want = raw:narrow(1, 1, 2):float() / 255
    assert.is_true(test.x:narrow(1, 1, 2):view(2, 28, 28):equal(want))
  end)

  it("loads the full 10000-image test split (the train split limited to as many)", function()
    local train, test = data.fashion_mnist("/usr/share/datasets/fashion-mnist",
                                           {limit = 10000})
    assert.are.same({10000, 1, 28, 28}, test.x:shape())
    assert.are.same({10000}, test.y:shape())
    assert.are.same({10000}, train.y:shape())
    for c = 1, 10 do assert.are.equal(1000, test.y:eq(c):sum():item()) end
    assert.is_true(test.x:min():item() >= 0 and test.x:max():item() <= 1)
    local raw = data.read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    assert.is_true(test.x:view(10000, 28, 28):equal(raw:float() / 255))
  end)

  it("limit beyond the split keeps it all; limit 0 keeps nothing", function()
    local d = mnist_dir()
    local train, test = data.mnist(d, {limit = 100})
    assert.are.equal(5, train.x:size(1))
    assert.are.equal(3, test.x:size(1))
    train, test = data.mnist(d, {limit = 0})
    assert.are.same({0, 1, 28, 28}, train.x:shape())
    assert.are.same({0}, test.y:shape())
    rm(d)
  end)

  it("names the Debian package when its directory is missing", function()
    local saved = data._fashion_dir
    data._fashion_dir = "/nonexistent/fashion-mnist"
    local msg = message(data.fashion_mnist, {limit = 1})
    data._fashion_dir = saved
    assert.are.equal("fashion_mnist: /nonexistent/fashion-mnist not found; install the " ..
                     "Debian package dataset-fashion-mnist (apt-get install " ..
                     "dataset-fashion-mnist) or pass a directory", msg)
  end)

  it("rejects bad arguments", function()
    assert.are.equal("fashion_mnist: unknown option 'limt'; did you mean 'limit'?",
                     message(data.fashion_mnist, {limt = 3}))
    assert.are.equal("fashion_mnist: limit must be >= 0, got -1",
                     message(data.fashion_mnist, {limit = -1}))
    assert.are.equal("fashion_mnist: limit must be an integer, got 1.5",
                     message(data.fashion_mnist, {limit = 1.5}))
    assert.are.equal("fashion_mnist: expected a directory (a string), got 5",
                     message(data.fashion_mnist, 5))
    assert.are.equal("fashion_mnist: directory '/nonexistent' not found",
                     message(data.fashion_mnist, "/nonexistent"))
  end)
end)

describe("data.mnist", function()
  it("reads a folder of gzipped and plain files", function()
    local d = mnist_dir()
    local train, test = data.mnist(d)
    rm(d)
    assert.are.same({5, 1, 28, 28}, train.x:shape())
    assert.are.same({3, 1, 28, 28}, test.x:shape())
    assert.are.same({6, 1, 5, 2, 10}, train.y:totable())
    assert.are.same({8, 3, 2}, test.y:totable())
    assert.are.equal("int64", test.y.dtype)
    assert.are.same({"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, train.classes)
    assert.are.equal("4", train.classes[train.y[3]])
    -- image 2, row 1, column 3 is pixel 3 of image 2
    assert.are.equal(string.format("%.6f", pixel(2, 3) / 255),
                     string.format("%.6f", train.x[2][1][1][3]))
    assert.are.equal(string.format("%.6f", pixel(3, 28 * 27 + 28) / 255),
                     string.format("%.6f", test.x[3][1][28][28]))
  end)

  it("needs a directory, and says which file is missing", function()
    assert.truthy(message(data.mnist):find("^mnist: expected the directory holding " ..
                                           "train%-images%-idx3%-ubyte"))
    assert.are.equal("mnist: directory '/nonexistent' not found",
                     message(data.mnist, "/nonexistent"))
    local d = mnist_dir()
    os.remove(d .. "/t10k-labels-idx1-ubyte")
    assert.are.equal(("mnist: neither t10k-labels-idx1-ubyte nor " ..
                      "t10k-labels-idx1-ubyte.gz is in '%s'"):format(d),
                     message(data.mnist, d))
    -- errors found deep inside blame the line of the call
    local msg = message(function() data.mnist(d, {limit = 1}) end)
    assert.truthy(msg:match("^[^:]*datasets_spec%.lua:%d+: mnist: neither"), msg)
    msg = message(function() data.fashion_mnist{limit = "all"} end)
    assert.truthy(msg:match("^[^:]*datasets_spec%.lua:%d+: fashion_mnist: limit"), msg)
    rm(d)
  end)

  it("checks the files' shapes, types, counts and labels", function()
    local d = mnist_dir()
    local tl = d .. "/t10k-labels-idx1-ubyte"
    local ti = d .. "/t10k-images-idx3-ubyte"
    write(tl, labels{7, 2})
    assert.are.equal(("mnist: '%s' has 3 images but '%s' has 2 labels"):format(ti, tl),
                     message(data.mnist, d))
    write(tl, labels{7, 12, 1})
    assert.are.equal(("mnist: '%s' has the label 12, expected 0..9"):format(tl),
                     message(data.mnist, d))
    write(tl, header(0x0C, {3}) .. string.pack(">i4>i4>i4", 1, 2, 3))
    assert.are.equal(("mnist: '%s' holds int32 [3], expected uint8 labels [N]"):format(tl),
                     message(data.mnist, d))
    write(tl, labels{7, 2, 1})
    write(ti, images(3, 28, 27))
    assert.are.equal(("mnist: '%s' holds uint8 [3,28,27], expected uint8 images [N,28,28]")
                     :format(ti), message(data.mnist, d))
    write(ti, header(0x08, {3, 28, 28}) .. "\0\0")
    assert.are.equal(("mnist: read_idx: '%s' is truncated: expected 2352 bytes of data, " ..
                      "got 2"):format(ti), message(data.mnist, d))
    rm(d)
  end)
end)
