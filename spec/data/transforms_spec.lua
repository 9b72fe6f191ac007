-- data.transforms (core/data_transforms.c) and the loader's transform and
-- prefetch options (core/data_queue.c).  Rotation against torchvision's
-- formula run through torch's grid_sample (spec/reference/
-- transforms_values.lua, written by make_transforms_reference.py); crops
-- are checked to be a window of the padded image, flips against :flip(4),
-- Normalize exactly; then determinism, prefetch == no prefetch, errors.
local ember = require "ember"
local data = ember.data

local ref = dofile("spec/reference/transforms_values.lua")

local function from_ref(r) return ember.tensor(r.data, {dtype = "float32"}):view(r.shape) end

local function message(fn, ...)
  local ok, msg = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(msg)
end

local function maxdiff(a, b) return (a:double() - b:double()):abs():max():item() end

local function same(a, b)
  assert.are.same(a:shape(), b:shape())
  assert.are.equal(0, maxdiff(a, b))
end

local x = from_ref(ref.input)   -- 2 x 3 x 5 x 6

--- Is img (C x h x w) the window of padded (C x H x W) at some offset?
local function window_of(img, padded)
  local h, w = img:size(2), img:size(3)
  for top = 1, padded:size(2) - h + 1 do
    for left = 1, padded:size(3) - w + 1 do
      if maxdiff(padded:narrow(2, top, h):narrow(3, left, w), img) == 0 then
        return top, left
      end
    end
  end
end

describe("data.transforms", function()
  it("Normalize: (x - mean) / std per channel, exactly", function()
    local tf = data.transforms{data.Normalize({0.5, -1, 2}, {2, 0.25, 3})}
    local want = (x - ember.tensor({0.5, -1, 2}):view(1, 3, 1, 1)) / ember.tensor({2, 0.25, 3}):view(1, 3, 1, 1)
    same(tf(x), want)
    same(data.transforms{data.Normalize(1, 2)}(x), (x - 1) / 2)
  end)

  it("RandomHorizontalFlip: p = 1 is :flip(4), p = 0 the identity, else one of them", function()
    same(data.transforms{data.RandomHorizontalFlip(1)}(x), x:flip(4))
    same(data.transforms{data.RandomHorizontalFlip(0)}(x), x)
    local big = ember.randn(64, 2, 3, 4)
    local out = data.RandomHorizontalFlip()(big)
    local flipped = 0
    for i = 1, 64 do
      local o, b = out[i], big[i]
      if maxdiff(o, b) ~= 0 then
        same(o, b:flip(3))
        flipped = flipped + 1
      end
    end
    assert.is_true(flipped > 16 and flipped < 48, "flips: " .. flipped)
  end)

  it("RandomCrop: a window of the zero-padded image, at offsets that vary", function()
    local big = ember.randn(40, 2, 5, 6)
    local out = data.RandomCrop({4, 5}, {padding = 2})(big)
    assert.are.same({40, 2, 4, 5}, out:shape())
    local padded = ember.zeros(40, 2, 9, 10)
    padded:narrow(3, 3, 5):narrow(4, 3, 6):copy_(big)
    local offsets = {}
    for i = 1, 40 do
      local top, left = window_of(out[i], padded[i])
      assert.is_not_nil(top, "image " .. i .. " is no window")
      offsets[top * 100 + left] = true
    end
    local n = 0
    for _ in pairs(offsets) do n = n + 1 end
    assert.is_true(n > 10, "distinct offsets: " .. n)
    -- crop to the full padded size: the padded image itself
    same(data.RandomCrop({9, 10}, {padding = 2})(big), padded)
  end)

  it("RandomCrop: fill and reflect padding as torch's F.pad", function()
    local out = data.RandomCrop(5, {padding = 2, padding_mode = "reflect"})(x)
    local reflect = from_ref(ref.reflect2)
    for i = 1, 2 do assert.is_not_nil(window_of(out[i], reflect[i])) end
    local filled = data.RandomCrop({9, 10}, {padding = 2, fill = 7})(x)
    assert.are.equal(7, filled[1][1][1][1])
    same(filled:narrow(3, 3, 5):narrow(4, 3, 6), x)
  end)

  it("RandomRotation: torchvision's bilinear rotation with its fill rule", function()
    for _, r in ipairs(ref.rotations) do
      local out = data.RandomRotation({r.angle, r.angle}, {fill = r.fill})(x)
      assert.is_true(maxdiff(out, from_ref(r.out)) < 1e-5, "angle " .. r.angle)
    end
    same(data.RandomRotation(0)(x), x)
    -- 90 degrees on a square: rot90 (counter-clockwise) within 1e-5
    local sq = ember.randn(3, 2, 7, 7)
    local out = data.RandomRotation({90, 90})(sq)
    assert.is_true(maxdiff(out, sq:flip(4):transpose(3, 4)) < 1e-5)
  end)

  it("RandomRotation: angles within [-d, d], one per image", function()
    local sq = ember.randn(20, 1, 9, 9)
    local out = data.RandomRotation(10)(sq)
    local lo = data.RandomRotation({-10, -10})(sq)
    local distinct = 0
    for i = 2, 20 do
      if maxdiff(out[i] - sq[i], out[1] - sq[1]) > 1e-6 then distinct = distinct + 1 end
    end
    assert.is_true(distinct > 15)
    assert.is_true(maxdiff(lo, sq) > 0)
  end)

  it("is seeded by the generator, independent of the thread count", function()
    local tf = data.transforms{data.RandomCrop(32, {padding = 4}), data.RandomHorizontalFlip(),
                               data.Normalize({0.1, 0.2, 0.3}, {1, 2, 3}), data.RandomRotation(10)}
    local imgs = ember.randn(16, 3, 32, 32)
    local g = ember.Generator(11)
    local a = tf(imgs, {generator = g})
    assert.are.equal(16 * 4, g:get_state().offset)
    local threads = ember.get_num_threads()
    ember.set_num_threads(1)
    local b = tf(imgs, {generator = ember.Generator(11)})
    ember.set_num_threads(threads)
    same(a, b)
    assert.is_true(maxdiff(a, tf(imgs, {generator = g})) > 0)
    -- the default generator: manual_seed makes it reproducible
    ember.manual_seed(4)
    local c = tf(imgs)
    ember.manual_seed(4)
    same(c, tf(imgs))
  end)

  it("takes non-contiguous and empty batches", function()
    local t = x:transpose(3, 4)   -- 2 x 3 x 6 x 5, a view
    same(data.RandomHorizontalFlip(1)(t), t:contiguous():flip(4))
    local e = data.RandomCrop(2, {padding = 1})(ember.zeros(0, 3, 4, 4))
    assert.are.same({0, 3, 2, 2}, e:shape())
  end)

  it("errors name the transform, and a failed call draws nothing", function()
    local g = ember.Generator(1)
    assert.matches("RandomCrop: crop 9x9 is larger than the padded image 7x8",
                   message(data.RandomCrop(9, {padding = 1}), x, {generator = g}))
    assert.are.equal(0, g:get_state().offset)
    assert.matches("Normalize: 2 means and stds for an image of 3 channels",
                   message(data.Normalize({1, 2}, {1, 2}), x))
    assert.matches("Normalize: std%[2%] is 0", message(data.Normalize, {1, 2}, {1, 0}))
    assert.matches("Normalize: 2 means but 1 stds", message(data.Normalize, {1, 2}, {1}))
    assert.matches("transforms: expected a float32 N x C x H x W tensor, got a float32 tensor %[3,5,6%]",
                   message(data.RandomHorizontalFlip(), x[1]))
    assert.matches("transforms: expected a float32 N x C x H x W tensor, got a float64",
                   message(data.RandomHorizontalFlip(), x:double()))
    assert.matches("RandomHorizontalFlip: p must be in %[0, 1%], got 2", message(data.RandomHorizontalFlip, 2))
    assert.matches("RandomRotation: degrees must be", message(data.RandomRotation, -1))
    assert.matches("RandomRotation: degrees must be", message(data.RandomRotation, {5, 1}))
    assert.matches("RandomCrop: padding_mode must be", message(data.RandomCrop, 3, {padding_mode = "edge"}))
    assert.matches("RandomCrop: reflect padding 5 needs an image larger",
                   message(data.RandomCrop(3, {padding = 5, padding_mode = "reflect"}), x))
    -- the padding is checked before the padded size is computed (an
    -- overflow, which `make asan`'s UBSan stops at, came first)
    assert.matches("RandomCrop: size must be positive and padding in 0..1048576",
                   message(data.RandomCrop(3, {padding = math.maxinteger}), x))
    assert.matches("RandomCrop: unknown option 'pading'", message(data.RandomCrop, 3, {pading = 1}))
    assert.matches("transforms: item 2 is a boolean", message(data.transforms, {data.RandomHorizontalFlip(), true}))
    assert.matches("transforms: unknown option 'gen'", message(data.RandomHorizontalFlip(), x, {gen = g}))
    assert.are.equal("transforms{RandomCrop, RandomHorizontalFlip}",
                     tostring(data.transforms{data.RandomCrop(2), data.RandomHorizontalFlip()}))
  end)
end)

describe("data.loader transform and prefetch", function()
  local X = ember.randn(53, 3, 8, 8)
  local Y = ember.arange(1, 54)
  local tf = data.transforms{data.RandomCrop(6, {padding = 2}), data.RandomHorizontalFlip(),
                             data.RandomRotation(5)}

  --- The batches of two epochs, each step drawing from the default
  -- generator (as dropout would) to show the draws do not interleave.
  local function two_epochs(loader)
    local out = {}
    for _ = 1, 2 do
      for xb, yb in loader do
        out[#out + 1] = {xb, yb}
        ember.rand(3)
      end
    end
    return out
  end

  local function same_batches(a, b)
    assert.are.equal(#a, #b)
    for i = 1, #a do
      same(a[i][1], b[i][1])
      same(a[i][2], b[i][2])
    end
  end

  for _, base in ipairs{{seed = 3}, {generator = true}, {}} do
    local what = base.seed and "a seed" or base.generator and "a generator" or "the default generator"
    it("prefetch gives the batches of no prefetch, shuffled, with " .. what, function()
      local runs = {}
      for _, k in ipairs{0, 1, 3} do
        ember.manual_seed(9)
        local opts = {batch_size = 8, shuffle = true, transform = tf, prefetch = k, seed = base.seed}
        if base.generator then opts.generator = ember.Generator(5) end
        runs[#runs + 1] = two_epochs(data.loader(X, Y, opts))
      end
      same_batches(runs[1], runs[2])
      same_batches(runs[1], runs[3])
      -- the transform did something, and differently in the two epochs
      assert.is_true(maxdiff(runs[1][1][1], X:index_select(1, runs[1][1][2]):narrow(3, 2, 6):narrow(4, 2, 6)) > 0)
      assert.is_true(#runs[1] == 14)
    end)
  end

  it("a batch is the rows' images through the transform at their epoch positions", function()
    local g = ember.Generator(2)
    local loader = data.loader(X, Y, {batch_size = 10, transform = tf, generator = g, prefetch = 2})
    local all = {}
    for xb in loader do all[#all + 1] = xb end
    same(ember.cat(all), tf(X, {generator = ember.Generator(2)}))
  end)

  it("clearing the queue waits for the running batch only: the queued ones never run", function()
    local run = require "helpers.run"
    local tmp = run.tmpdir()
    local ok, err = pcall(function()
      local g = ember.Generator(5)
      local path = tmp .. "/big.png"
      data.write_image(path, ember.rand({3, 1200, 1200}, {generator = g}))   -- noise: a slow decode
      local paths, labels = {}, {}
      for i = 1, 4 do paths[i], labels[i] = path, 1 end
      local src = ember._image_source(paths, labels, 3, 1200, 1200, nil, 1)
      local rows = ember.tensor({1, 2, 3, 4}, {dtype = "int64"})
      local q = ember._batch_queue()
      local t0 = os.clock()
      q:submit(src, rows)
      q:next()
      local one = os.clock() - t0
      for _ = 1, 12 do q:submit(src, rows) end
      local wall = os.time()
      t0 = os.clock()
      q:clear()
      local cleared = os.clock() - t0
      assert.are.equal(0, q:pending())
      -- at most the running batch (os.clock counts every thread's CPU time)
      assert.truthy(cleared < 4 * one + 0.05,
                    ("clear took %.3f s of CPU, one batch %.3f s"):format(cleared, one))
      assert.truthy(os.time() - wall < 30)
    end)
    run.rmdir(tmp)
    assert(ok, err)
  end)

  it("an epoch abandoned mid-way, then a whole one, then the loader collected", function()
    local loader = data.loader(X, Y, {batch_size = 4, prefetch = 3, shuffle = true, seed = 1})
    for _ in loader do break end
    local n = 0
    for xb, yb in loader do
      n = n + 1
      same(xb, X:index_select(1, yb))
    end
    assert.are.equal(14, n)
    for _ in loader do break end
    loader = nil   -- luacheck: ignore
    collectgarbage()
    collectgarbage()
  end)

  it("Subsets, non-contiguous tensors, and datasets without tensors", function()
    local sub = data.Subset(data.TensorDataset(X:transpose(3, 4), Y), ember.arange(40, 1, -3))
    local function run(ds, k)
      local out = {}
      for xb, yb in data.loader(ds, {batch_size = 5, transform = tf, seed = 8, prefetch = k}) do
        out[#out + 1] = {xb, yb}
      end
      return out
    end
    same_batches(run(sub, 0), run(sub, 2))
    local items = setmetatable({}, {__len = function() return 12 end,
                                    __index = function(_, i) return {X[i], Y[i]} end})
    same_batches(run(items, 0), run(items, 2))
  end)

  it("a non-contiguous tensor changed in place between epochs: prefetch sees the change", function()
    local function epochs(k)
      local base = ember.randn(12, 3, 4, 4, {generator = ember.Generator(5)})
      local x = base:transpose(3, 4)          -- non-contiguous: the worker reads a copy
      local loader = data.loader(x, {batch_size = 4, prefetch = k})
      local out = {}
      for xb in loader do out[#out + 1] = xb end
      base:mul_(2)                            -- the user's tensor changes
      for xb in loader do out[#out + 1] = xb end
      return out
    end
    local a, b = epochs(0), epochs(2)
    assert.are.equal(6, #b)
    for i = 1, #a do same(a[i], b[i]) end
  end)

  it("a dataset with a batch source hook is prefetched from it", function()
    -- the hook's value goes to the worker: here tensors whose rows are
    -- the dataset's (a C data set returns a userdata with a C loader)
    local calls = 0
    local mt = {__len = function() return 20 end,
                __index = function(_, i) return {X[i], Y[i]} end,
                _batch_source = function() calls = calls + 1; return {X:narrow(1, 1, 20), Y:narrow(1, 1, 20)} end}
    local ds = setmetatable({}, mt)
    local function run(k)
      local out = {}
      for xb, yb in data.loader(ds, {batch_size = 6, shuffle = true, seed = 4, transform = tf, prefetch = k}) do
        out[#out + 1] = {xb, yb}
      end
      return out
    end
    same_batches(run(0), run(2))
    assert.are.equal(1, calls)
  end)

  it("an error on the worker comes back on the batch that failed", function()
    local loader = data.loader(X, Y, {batch_size = 8, prefetch = 2,
                                      transform = data.RandomCrop(20)})
    assert.matches("RandomCrop: crop 20x20 is larger than the padded image 8x8",
                   message(function() for _ in loader do end end))
    assert.matches("loader: prefetch must be >= 0, got %-1", message(data.loader, X, {prefetch = -1}))
    assert.matches("RandomRotation: degrees must be d >= 0 or {lo, hi} with lo <= hi",
                   message(data.RandomRotation, {0 / 0, 5}))
    assert.matches("^spec/data/transforms_spec%.lua:%d+: transforms: generator must be an ember.Generator, got 3",
                   message(function() local y = tf(X, {generator = 3}); return y end))
    assert.matches("loader: transform must be data.transforms", message(data.loader, X, {transform = 3}))
    assert.matches("loader: transform: expected a float32 N x C x H x W tensor",
                   message(function() for _ in data.loader(Y, {transform = tf}) do end end))
  end)
end)
