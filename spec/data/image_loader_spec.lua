-- data.image_folder through the loader's prefetch worker (the C batch
-- source of bindings/lua_data.c: the file list copied once, decoded on the
-- worker thread), and the loader's generator option driving the shuffle.
local ember = require "ember"
local data = ember.data

local DIR = "spec/fixtures/images"

local function same(a, b, what)
  assert.same(a:size(), b:size(), what)
  assert.is_true(ember.equal(a, b), what)
end

--- Every batch of an epoch of a fresh loader, as {x, y} pairs.
local function epoch(ds, opts)
  local out = {}
  for x, y in data.loader(ds, opts) do out[#out + 1] = {x, y} end
  return out
end

local function same_epochs(a, b, what)
  assert.equal(#a, #b, what)
  for k = 1, #a do
    same(a[k][1], b[k][1], what .. ": x of batch " .. k)
    same(a[k][2], b[k][2], what .. ": y of batch " .. k)
  end
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "/a' '" .. d .. "/b'"))
  return d
end

local function copy(from, to)
  local f = assert(io.open(from, "rb"))
  local bytes = f:read("a")
  f:close()
  f = assert(io.open(to, "wb"))
  f:write(bytes)
  f:close()
end

describe("data.image_folder through the prefetch worker", function()
  local ds = data.image_folder(DIR, {size = {5, 6}})
  local tf = data.transforms{data.RandomCrop(4, {padding = 1}), data.RandomHorizontalFlip(),
                             data.Normalize({0.5, 0.4, 0.3}, {0.2, 0.25, 0.3})}

  it("gives the batches made in place, bit for bit, with prefetch 0, 1 and 3", function()
    for _, opts in ipairs{{seed = 4}, {generator = true}} do
      local function run(prefetch)
        return epoch(ds, {batch_size = 3, shuffle = true, transform = tf, prefetch = prefetch,
                          seed = opts.seed,
                          generator = opts.generator and ember.Generator(9) or nil})
      end
      local base = run(0)
      assert.equal(3, #base)
      same_epochs(base, run(1), "prefetch 1")
      same_epochs(base, run(3), "prefetch 3")
    end
  end)

  it("decodes on the worker: the batch matches ds:batch, transformed", function()
    local loader = data.loader(ds, {batch_size = 4, shuffle = true, seed = 2, prefetch = 2})
    local order = data.loader(ember.arange(1, #ds + 1), {batch_size = 4, shuffle = true, seed = 2})
    local it = loader:iter()
    for idx in order do
      local x, y = it()
      local wx, wy = ds:batch(idx)
      same(x, wx, "x")
      same(y, wy, "y")
    end
    assert.is_nil(it())
    assert.is_truthy(loader._hook_source, "the C source was used")
  end)

  it("applies the transform with and without prefetch", function()
    for _, prefetch in ipairs{0, 2} do
      local loader = data.loader(ds, {batch_size = 8, transform = tf, seed = 1, prefetch = prefetch})
      local x = loader:iter()()
      assert.same({8, 3, 4, 4}, x:size(), "prefetch " .. prefetch)
      -- normalized: the raw images are in [0, 1], these are not
      assert.is_true(x:min():item() < 0, "prefetch " .. prefetch)
    end
  end)

  it("takes the fast path for a Subset (and a Subset of a Subset)", function()
    local sub = data.Subset(data.Subset(ds, {8, 6, 4, 2, 1, 3}), {5, 1, 2, 6})
    local want = epoch(sub, {batch_size = 3, shuffle = true, seed = 3})
    local loader = data.loader(sub, {batch_size = 3, shuffle = true, seed = 3, prefetch = 2})
    local got = {}
    for x, y in loader do got[#got + 1] = {x, y} end
    assert.is_truthy(loader._hook_source)
    same_epochs(want, got, "subset")
    -- files 1, 8, 6, 3 in order: cat, dog, dog, cat
    local x, y = data.loader(sub, {batch_size = 4, prefetch = 1}):iter()()
    local wx, wy = ds:batch{1, 8, 6, 3}
    same(x, wx, "x in order")
    same(y, ember.tensor({1, 2, 2, 1}), "y in order")
    same(y, wy, "y as ds:batch")
  end)

  it("names the bad file on the batch that has it, mid-epoch", function()
    local d = tmpdir()
    for k, f in ipairs{"cat/a.png", "cat/b.jpg", "dog/a.png"} do
      copy(DIR .. "/" .. f, ("%s/a/%d%s"):format(d, k, f:match("%.%a+$")))
    end
    local bad = assert(io.open(d .. "/b/bad.png", "wb"))
    bad:write("not a png")
    bad:close()
    local folder = data.image_folder(d, {size = {4, 4}})
    for _, prefetch in ipairs{0, 1, 3} do
      local it = data.loader(folder, {batch_size = 3, prefetch = prefetch}):iter()
      assert.equal(3, it():size(1), "the first batch is fine")
      local ok, err = pcall(it)
      assert.is_false(ok)
      assert.matches("image_folder: .*'" .. d:gsub("%p", "%%%0") .. "/b/bad%.png'", err)
    end
    os.execute("rm -r '" .. d .. "'")
  end)

  it("without a size, batches are made on the caller's thread (sizes may differ)", function()
    local loader = data.loader(data.image_folder(DIR), {batch_size = 1, prefetch = 2})
    local x = loader:iter()()
    assert.equal(3, x:size(2))
    assert.is_false(loader._hook_source)
  end)
end)

describe("data.loader's generator", function()
  local X = ember.arange(1, 21)

  it("drives the shuffle as DataLoader(generator = g): the order is randperm's from g", function()
    local loader = data.loader(X, {batch_size = 20, shuffle = true, generator = ember.Generator(7)})
    local g = ember.Generator(7)
    same(loader:iter()(), X:index_select(1, ember.randperm(20, {generator = g})), "epoch 1")
    same(loader:iter()(), X:index_select(1, ember.randperm(20, {generator = g})), "epoch 2")
  end)

  it("leaves the global generator alone, and seeded shuffles as they were", function()
    ember.manual_seed(1)
    local before = ember.get_rng_state()
    epoch(X, {shuffle = true, generator = ember.Generator(7)})
    assert.same(before, ember.get_rng_state())
    ember.manual_seed(5)
    local a = epoch(X, {batch_size = 20, shuffle = true})[1][1]
    ember.manual_seed(5)
    same(a, X:index_select(1, ember.randperm(20)), "the global generator without one")
  end)

  it("refuses a seed with a generator, and a generator that is not one", function()
    assert.has_error(function() data.loader(X, {seed = 1, generator = ember.Generator(1)}) end,
                     "loader: give seed or generator, not both")
    assert.has_error(function() data.loader(X, {generator = 5}) end,
                     "loader: generator must be an ember.Generator, got 5")
  end)
end)

describe("the prefetch worker's errors and limits", function()
  local X = ember.arange(1, 21):float():view(20, 1)

  it("takes a prefetch larger than what is left (no overflow of b + prefetch)", function()
    local n = 0
    for xb in data.loader(X, {batch_size = 3, prefetch = math.maxinteger}) do n = n + 1 end
    assert.equal(7, n)
  end)

  it("blames the user's `for` for a batch that failed on the worker", function()
    local d = tmpdir()
    copy(DIR .. "/cat/a.png", d .. "/a/x.png")
    local f = assert(io.open(d .. "/b/y.png", "wb"))
    f:write("not an image")
    f:close()
    local ds = data.image_folder(d, {size = {5, 6}})
    for _, pf in ipairs{0, 2} do
      local ok, err = pcall(function()
        for _ in data.loader(ds, {batch_size = 1, prefetch = pf}) do end
      end)
      assert.is_false(ok)
      assert.matches("^spec/data/image_loader_spec%.lua:%d+: image_folder: '.*y%.png' is not a PNG or JPEG file",
                     err, nil, false, "prefetch " .. pf)
    end
    os.execute("rm -rf '" .. d .. "'")
  end)

  it("checks the images for the transforms as it does in place", function()
    local tf = data.transforms{data.RandomHorizontalFlip()}
    local ok, err = pcall(function()
      for _ in data.loader(X, {transform = tf, prefetch = 1}) do end
    end)
    assert.is_false(ok)
    assert.matches("^spec/data/image_loader_spec%.lua:%d+: loader: transform: expected a float32 N x C x H x W tensor",
                   err)
  end)
end)
