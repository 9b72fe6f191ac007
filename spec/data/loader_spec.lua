-- data.loader, TensorDataset, Subset, random_split, and the generator
-- functions they stand on: randperm, get_rng_state, set_rng_state.
local ember = require "ember"
local data = ember.data

-- {======================================================================
-- Helpers
-- =======================================================================

local function message(fn, ...)
  local ok, msg = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return msg
end

--- The batches of one epoch (one `for` over the loader), each a list of
-- the values the loop received.
local function epoch(loader)
  local out = {}
  for a, b, c in loader do out[#out + 1] = {a, b, c} end
  return out
end

--- Sample values (x is arange-like: row i holds i) of an epoch, in order.
local function order(batches)
  local seen = {}
  for _, b in ipairs(batches) do
    for _, v in ipairs(b[1]:totable()) do seen[#seen + 1] = v end
  end
  return seen
end

local function sorted(t)
  local c = table.move(t, 1, #t, 1, {})
  table.sort(c)
  return c
end

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

-- }======================================================================

describe("ember.randperm", function()
  it("is a permutation of 1..n, int64 by default", function()
    ember.manual_seed(3)
    local p = ember.randperm(100)
    assert.are.equal("int64", p.dtype)
    assert.are.same({100}, p:shape())
    assert.are.same(range(100), sorted(p:totable()))
    assert.are_not.same(range(100), p:totable())
  end)

  it("takes a dtype; n = 0 and 1", function()
    assert.are.same(range(20), sorted(ember.randperm(20, {dtype = "int32"}):totable()))
    assert.are.equal("int32", ember.randperm(20, {dtype = "int32"}).dtype)
    assert.are.equal("float64", ember.randperm(5, {dtype = "float64"}).dtype)
    assert.are.same({0}, ember.randperm(0):shape())
    assert.are.same({1}, ember.randperm(1):totable())
  end)

  it("is reproducible under manual_seed and advances the counter by n", function()
    ember.manual_seed(42)
    local a = ember.randperm(50)
    local s = ember.get_rng_state()
    assert.are.same({seed = 42, offset = 50}, s)
    ember.manual_seed(42)
    assert.is_true(ember.randperm(50):equal(a))
    ember.manual_seed(43)
    assert.is_false(ember.randperm(50):equal(a))
  end)

  it("rejects bad arguments", function()
    assert.are.equal("randperm: n must be >= 0, got -1", message(ember.randperm, -1))
    assert.are.equal("randperm: n must be an integer, got 2.5", message(ember.randperm, 2.5))
    assert.are.equal("randperm: n must be an integer, got no value", message(ember.randperm))
    assert.are.equal("randperm: 300 values do not fit in uint8",
                     message(ember.randperm, 300, {dtype = "uint8"}))
    assert.are.equal("randperm: 2 values do not fit in bool",
                     message(ember.randperm, 2, {dtype = "bool"}))
    assert.are.equal("randperm: unknown option 'dtpye'; did you mean 'dtype'?",
                     message(ember.randperm, 2, {dtpye = "int32"}))
    assert.are.equal("randperm: expected an options table, got string",
                     message(ember.randperm, 2, "int32"))
  end)
end)

describe("ember.get_rng_state / set_rng_state", function()
  it("replays the draws made after the state was read", function()
    ember.manual_seed(7)
    ember.rand(3)
    local s = ember.get_rng_state()
    assert.are.same({seed = 7, offset = 3}, s)
    local a = ember.rand(5)
    local p = ember.randperm(10)
    ember.set_rng_state(s)
    assert.is_true(ember.rand(5):equal(a))
    assert.is_true(ember.randperm(10):equal(p))
  end)

  it("a uint64 seed round-trips through the int64 bit pattern", function()
    ember.manual_seed(-1)          -- 2^64 - 1
    local s = ember.get_rng_state()
    assert.are.equal(-1, s.seed)
    assert.are.equal(-1, ember.initial_seed())
    local a = ember.rand(4)
    ember.set_rng_state{seed = math.mininteger, offset = -5}
    assert.are.same({seed = math.mininteger, offset = -5}, ember.get_rng_state())
    ember.set_rng_state(s)
    assert.is_true(ember.rand(4):equal(a))
  end)

  it("rejects a bad state and changes nothing", function()
    ember.manual_seed(11)
    local before = ember.get_rng_state()
    assert.are.equal("set_rng_state: expected a table {seed = integer, offset = integer} " ..
                     "(from get_rng_state), got number", message(ember.set_rng_state, 5))
    assert.are.equal("set_rng_state: state.offset must be an integer, got nil",
                     message(ember.set_rng_state, {seed = 1}))
    assert.are.equal("set_rng_state: state.seed must be an integer, got 1.5",
                     message(ember.set_rng_state, {seed = 1.5, offset = 0}))
    assert.are.equal("set_rng_state: state.offset must be an integer, got string",
                     message(ember.set_rng_state, {seed = 1, offset = "0"}))
    assert.are.equal("set_rng_state: unknown field 'counter'",
                     message(ember.set_rng_state, {seed = 1, offset = 0, counter = 2}))
    assert.are.same(before, ember.get_rng_state())
  end)
end)

describe("data.TensorDataset and data.Subset", function()
  it("indexes samples across its tensors", function()
    local x, y = ember.arange(1, 13):view(6, 2), ember.arange(10, 16)
    local ds = data.TensorDataset(x, y)
    assert.are.equal(6, #ds)
    assert.are.equal(x, ds.tensors[1])
    assert.are.equal(y, ds.tensors[2])
    local item = ds[3]
    assert.are.same({5, 6}, item[1]:totable())
    assert.are.equal(12, item[2])
    local a, b = ds:get(6)
    assert.are.same({11, 12}, a:totable())
    assert.are.equal(15, b)
    assert.are.equal("TensorDataset(int64 [6,2], int64 [6])", tostring(ds))
  end)

  it("rejects mismatched tensors and bad indices", function()
    assert.are.equal("TensorDataset: the tensors' first dims differ: [6,2] and [5] " ..
                     "(arguments 1 and 2)",
                     message(data.TensorDataset, ember.zeros(6, 2), ember.zeros(5)))
    assert.are.equal("TensorDataset: argument 2 must be a tensor, got a table",
                     message(data.TensorDataset, ember.zeros(6), {}))
    assert.are.equal("TensorDataset: expected at least one tensor",
                     message(data.TensorDataset))
    -- an index out of range blames the line that indexes
    local ds = data.TensorDataset(ember.zeros(4))
    assert.truthy(message(function() return ds[5] end)
                  :match("^[^:]*loader_spec%.lua:%d+: TensorDataset: index 5 is out of range 1%.%.4$"))
    assert.truthy(message(function() return ds[0] end)
                  :find("TensorDataset: index 0 is out of range 1..4", 1, true))
  end)

  it("Subset maps its positions to the dataset's", function()
    local ds = data.TensorDataset(ember.arange(1, 11) * 10)
    local s = data.Subset(ds, {4, 1, 9})
    assert.are.equal(3, #s)
    assert.are.equal(40, s[1][1])
    assert.are.equal(90, s[3][1])
    assert.are.same({4, 1, 9}, s.indices:totable())
    assert.are.equal(ds, s.dataset)
    local t = data.Subset(s, ember.tensor({3, 2}, {dtype = "int32"}))
    assert.are.equal(90, t[1][1])
    assert.are.equal("Subset: index 11 is out of range 1..10",
                     message(data.Subset, ds, {1, 11}))
    assert.are.equal("Subset: index 2 must be an integer, got 1.5",
                     message(data.Subset, ds, {1, 1.5}))
    assert.are.equal("Subset: expected a dataset (a table with #ds and ds[i]), got 5",
                     message(data.Subset, 5, {1}))
  end)
end)

describe("data.random_split", function()
  local ds = data.TensorDataset(ember.arange(1, 11))

  local function all_indices(...)
    local out = {}
    for _, s in ipairs{...} do
      for _, v in ipairs(s.indices:totable()) do out[#out + 1] = v end
    end
    return out
  end

  it("counts: subsets of those sizes, disjoint, covering the dataset", function()
    local a, b = data.random_split(ds, {7, 3})
    assert.are.equal(7, #a)
    assert.are.equal(3, #b)
    assert.are.equal("int64", a.indices.dtype)
    assert.are.equal(ds, a.dataset)
    assert.are.same(range(10), sorted(all_indices(a, b)))
    -- items are the dataset's items at the indices
    for i = 1, #b do assert.are.equal(b.indices[i], b[i][1]) end
  end)

  it("fractions: floors, then the remainder from the first (PyTorch >= 1.13)", function()
    local a, b, c = data.random_split(ds, {0.5, 0.3, 0.2})
    assert.are.same({5, 3, 2}, {#a, #b, #c})
    a, b, c = data.random_split(ds, {0.33, 0.33, 0.34})   -- 3 3 3, one left
    assert.are.same({4, 3, 3}, {#a, #b, #c})
    assert.are.same(range(10), sorted(all_indices(a, b, c)))
    local p, q = data.random_split(7, {0.5, 0.5})          -- 3 3, one left
    assert.are.same({4, 3}, {#p, #q})
    assert.are.same(range(7), sorted(all_indices(p, q)))
    assert.are.equal(p.indices[2], p[2])                  -- a count's items are indices
  end)

  it("is reproducible under manual_seed, and with seed leaves the generator alone", function()
    ember.manual_seed(5)
    local a1 = data.random_split(ds, {6, 4})
    ember.manual_seed(5)
    local a2 = data.random_split(ds, {6, 4})
    assert.is_true(a1.indices:equal(a2.indices))

    ember.manual_seed(99)
    local before = ember.get_rng_state()
    local s1 = data.random_split(ds, {6, 4}, {seed = 5})
    assert.are.same(before, ember.get_rng_state())
    -- the same split as manual_seed(5) gives
    assert.is_true(s1.indices:equal(a1.indices))
    local s2 = data.random_split(ds, {6, 4}, {seed = 6})
    assert.is_false(s2.indices:equal(s1.indices))
  end)

  it("rejects bad lengths and arguments", function()
    assert.are.equal("random_split: the lengths sum to 9, expected the dataset's size 10 " ..
                     "(or fractions summing to 1)", message(data.random_split, ds, {6, 3}))
    assert.are.equal("random_split: the fractions sum to 0.9, expected 1 (or counts " ..
                     "summing to the dataset's size 10)",
                     message(data.random_split, ds, {0.5, 0.4}))
    assert.are.equal("random_split: length 2 must be >= 0, got -1",
                     message(data.random_split, ds, {11, -1}))
    assert.are.equal("random_split: expected a non-empty list of lengths, got a table",
                     message(data.random_split, ds, {}))
    assert.are.equal("random_split: seed must be an integer, got 1.5",
                     message(data.random_split, ds, {5, 5}, {seed = 1.5}))
    assert.are.equal("random_split: unknown option 'sed'; did you mean 'seed'?",
                     message(data.random_split, ds, {5, 5}, {sed = 1}))
    assert.are.equal("random_split: expected a dataset (a table with #ds and ds[i]), " ..
                     "got a string", message(data.random_split, "abc", {1}))
  end)
end)

describe("data.loader", function()
  local x = ember.arange(1, 11)           -- sample i holds i
  local y = x * 2

  it("batches in order, the last one smaller; #loader counts the batches", function()
    local loader = data.loader(x, y, {batch_size = 3})
    assert.are.equal(4, #loader)
    local bs = epoch(loader)
    assert.are.equal(4, #bs)
    assert.are.same({3, 3, 3, 1}, {bs[1][1]:size(1), bs[2][1]:size(1),
                                  bs[3][1]:size(1), bs[4][1]:size(1)})
    assert.are.same(range(10), order(bs))
    for _, b in ipairs(bs) do assert.is_true(b[2]:equal(b[1] * 2)) end
    -- batch_size defaults to 1, as in PyTorch
    assert.are.equal(10, #data.loader(x, y))
  end)

  it("drop_last drops the short batch", function()
    local loader = data.loader(x, y, {batch_size = 3, drop_last = true})
    assert.are.equal(3, #loader)
    local bs = epoch(loader)
    assert.are.equal(3, #bs)
    assert.are.same(range(9), order(bs))
    assert.are.equal(0, #data.loader(x, y, {batch_size = 11, drop_last = true}))
    assert.are.equal(1, #data.loader(x, y, {batch_size = 11}))
  end)

  it("shuffle: every sample once per epoch, x and y kept together", function()
    local loader = data.loader(x, y, {batch_size = 4, shuffle = true})
    for _ = 1, 3 do
      local bs = epoch(loader)
      assert.are.same(range(10), sorted(order(bs)))
      for _, b in ipairs(bs) do assert.is_true(b[2]:equal(b[1] * 2)) end
    end
  end)

  it("shuffle: a new order each epoch, reproducible under manual_seed", function()
    local big = ember.arange(1, 101)
    ember.manual_seed(1)
    local loader = data.loader(big, nil, {batch_size = 16, shuffle = true})
    local e1, e2 = order(epoch(loader)), order(epoch(loader))
    assert.are_not.same(e1, e2)
    assert.are_not.same(range(100), e1)
    ember.manual_seed(1)
    local again = data.loader(big, nil, {batch_size = 16, shuffle = true})
    assert.are.same(e1, order(epoch(again)))
    assert.are.same(e2, order(epoch(again)))
    -- the order is ember.randperm's
    ember.manual_seed(1)
    assert.are.same(ember.randperm(100):totable(), e1)
  end)

  it("seed: reproducible on its own, without touching the global generator", function()
    local big = ember.arange(1, 51)
    ember.manual_seed(123)
    local before = ember.get_rng_state()
    local l1 = data.loader(big, nil, {batch_size = 8, shuffle = true, seed = 9})
    local a1, a2 = order(epoch(l1)), order(epoch(l1))
    assert.are.same(before, ember.get_rng_state())
    assert.are_not.same(a1, a2)
    local l2 = data.loader(big, nil, {batch_size = 5, shuffle = true, seed = 9})
    assert.are.same(a1, order(epoch(l2)))
    assert.are.same(a2, order(epoch(l2)))
    -- epoch e: manual_seed(seed) and then e draws of randperm(n)
    ember.manual_seed(9)
    assert.are.same(a1, ember.randperm(50):totable())
    assert.are.same(a2, ember.randperm(50):totable())
    local other = data.loader(big, nil, {batch_size = 8, shuffle = true, seed = 10})
    assert.are_not.same(a1, order(epoch(other)))
  end)

  it("nil y yields x batches only; so does loader(x, opts)", function()
    local loader = data.loader(x, nil, {batch_size = 4})
    local it = loader:iter()
    assert.are.equal(1, select("#", it()))
    for _, b in ipairs(epoch(data.loader(x, {batch_size = 4}))) do
      assert.is_nil(b[2])
    end
    assert.are.same(range(10), order(epoch(data.loader(x, {batch_size = 4}))))
  end)

  it("x of any rank; batches are copies", function()
    local imgs = ember.arange(1, 10 * 2 * 3 + 1):float():view(10, 1, 2, 3)
    local bs = epoch(data.loader(imgs, y, {batch_size = 4}))
    assert.are.same({4, 1, 2, 3}, bs[1][1]:shape())
    assert.are.same({2, 1, 2, 3}, bs[3][1]:shape())
    assert.is_true(bs[2][1]:equal(imgs:narrow(1, 5, 4)))
    bs[1][1]:fill(0)
    assert.are.equal(1, imgs[1][1][1][1])
  end)

  it("a loop that breaks early: the next loop starts a new epoch", function()
    local loader = data.loader(x, y, {batch_size = 3})
    for xb in loader do
      assert.are.equal(1, xb[1])
      break
    end
    local first
    for xb in loader do first = first or xb[1] end
    assert.are.equal(1, first)
  end)

  it("iter() gives independent iterators", function()
    local loader = data.loader(x, y, {batch_size = 5})
    local i1, i2 = loader:iter(), loader:iter()
    assert.are.equal(1, i1()[1])
    assert.are.equal(1, i2()[1])
    assert.are.equal(6, i1()[1])
    assert.is_nil(i1())
    assert.are.equal(2, loader.epoch)
  end)

  it("datasets: TensorDataset of three tensors, Subsets of it", function()
    local z = x:float() / 10
    local ds = data.TensorDataset(x, y, z)
    local bs = epoch(data.loader(ds, {batch_size = 4}))
    assert.are.equal(3, #bs)
    assert.is_true(bs[1][3]:equal(z:narrow(1, 1, 4)))
    local train, val = data.random_split(ds, {8, 2}, {seed = 1})
    local seen = {}
    for xb, yb, zb in data.loader(train, {batch_size = 3, shuffle = true}) do
      assert.is_true(yb:equal(xb * 2))
      assert.is_true(zb:equal(xb:float() / 10))
      for _, v in ipairs(xb:totable()) do seen[#seen + 1] = v end
    end
    assert.are.same(sorted(train.indices:totable()), sorted(seen))
    local nested = data.Subset(val, {2})
    local only = epoch(data.loader(nested))
    assert.are.same({val.indices[2]}, only[1][1]:totable())
  end)

  it("a generic dataset: items stacked, numbers made into tensors", function()
    local ds = setmetatable({}, {
      __len = function() return 5 end,
      __index = function(_, i) return {ember.full({2}, i), i, i / 2} end,
    })
    local bs = epoch(data.loader(ds, {batch_size = 2}))
    assert.are.equal(3, #bs)
    assert.are.same({{1, 1}, {2, 2}}, bs[1][1]:totable())
    assert.are.equal("int64", bs[1][2].dtype)
    assert.are.same({3, 4}, bs[2][2]:totable())
    assert.are.equal("float32", bs[3][3].dtype)
    assert.are.same({2.5}, bs[3][3]:totable())
    -- a plain list of tensors
    local list = {ember.ones(3), ember.zeros(3), ember.ones(3)}
    local all = epoch(data.loader(list, {batch_size = 3}))
    assert.are.same({3, 3}, all[1][1]:shape())
    assert.is_nil(all[1][2])
  end)

  it("rejects bad arguments with the loader's name", function()
    assert.are.equal("loader: x has 10 samples but y has 9 (x [10], y [9])",
                     message(data.loader, x, ember.zeros(9)))
    assert.are.equal("loader: expected y to be a tensor or nil, got 5",
                     message(data.loader, x, 5))
    assert.are.equal("loader: expected a tensor x or a dataset, got a string",
                     message(data.loader, "x"))
    assert.are.equal("loader: batch_size must be >= 1, got 0",
                     message(data.loader, x, y, {batch_size = 0}))
    assert.are.equal("loader: batch_size must be an integer, got a string",
                     message(data.loader, x, y, {batch_size = "8"}))
    assert.are.equal("loader: shuffle must be a boolean, got 1",
                     message(data.loader, x, y, {shuffle = 1}))
    assert.are.equal("loader: seed must be an integer, got 0.5",
                     message(data.loader, x, y, {seed = 0.5}))
    assert.are.equal("loader: unknown option 'batchsize'; did you mean 'batch_size'?",
                     message(data.loader, x, y, {batchsize = 2}))
    assert.are.equal("loader: x is a 0-dim tensor, expected samples along dim 1",
                     message(data.loader, ember.tensor(1)))
    local bad = setmetatable({}, {__len = function() return 2 end,
                                  __index = function() return "text" end})
    local msg = message(function() for _ in data.loader(bad) do end end)
    assert.truthy(msg:find("loader: the items are a string, expected tensors or numbers",
                           1, true), msg)
    -- blamed on the line of the call
    local ok, where = pcall(function() data.loader(x, y, {batch_size = 0}) end)
    assert.is_false(ok)
    assert.truthy(where:match("^[^:]*loader_spec%.lua:%d+: loader:"), where)
  end)
end)
