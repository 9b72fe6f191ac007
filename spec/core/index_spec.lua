-- index_select along the first dimension, the data loader's batch gather:
-- core/cpu/index.c copies whole rows of a contiguous tensor (prefetching
-- the next ones) and walks slices otherwise.  Both are checked against
-- rows picked one by one with select().
local ember = require "ember"

--- t:index_select(1, idx) built row by row.
local function by_rows(t, list)
  local rows = {}
  for i, v in ipairs(list) do rows[i] = t:select(1, v):totable() end
  return rows
end

describe("index_select along dimension 1", function()
  it("copies rows of every dtype and rank", function()
    ember.manual_seed(3)
    local base = ember.randn(9, 2, 3)
    local list = {9, 1, 5, 5, 2, 9, 7, 3}
    for _, dt in ipairs{"float32", "float64", "int32", "int64", "uint8", "bool"} do
      local t = (base * 10):to(dt)
      for _, it_dt in ipairs{"int64", "int32"} do
        local idx = ember.tensor(list, {dtype = it_dt})
        local got = t:index_select(1, idx)
        assert.are.same({8, 2, 3}, got:shape())
        assert.are.equal(dt, got.dtype)
        assert.are.same(by_rows(t, list), got:totable(), dt .. " by " .. it_dt)
      end
    end
    local v = ember.arange(1, 11)                              -- 1-d: rows of one
    assert.are.same({10, 1, 4}, v:index_select(1, ember.tensor({10, 1, 4}, {dtype = "int64"})):totable())
  end)

  it("takes strided, 0-d and empty indices", function()
    local t = ember.arange(1, 13):view(6, 2)
    local pairs_ = ember.tensor({{6, 1}, {2, 5}, {3, 3}}, {dtype = "int64"})
    local idx = pairs_:select(2, 1)                            -- {6, 2, 3}, stride 2
    assert.are.same(by_rows(t, {6, 2, 3}), t:index_select(1, idx):totable())
    local one = t:index_select(1, ember.tensor(4, {dtype = "int64"}))
    assert.are.same({{7, 8}}, one:totable())
    assert.are.same({0, 2}, t:index_select(1, ember.zeros(0, {dtype = "int64"})):shape())
  end)

  it("gathers a batch the size of the loader's, with rows far apart", function()
    local x = ember.rand(5000, 1, 28, 28)
    local order = ember.randperm(5000)
    for b = 1, 3 do
      local idx = order:narrow(1, (b - 1) * 32 + 1, 32)
      local xb = x:index_select(1, idx)
      assert.are.same({32, 1, 28, 28}, xb:shape())
      for _, j in ipairs{1, 2, 17, 31, 32} do
        assert.is_true(xb[j]:equal(x[idx[j]]), ("batch %d, row %d"):format(b, j))
      end
    end
  end)

  it("walks slices of a strided tensor the same way", function()
    local t = ember.arange(1, 13):view(3, 4):t()               -- [4,3], not contiguous
    local list = {4, 1, 4}
    assert.are.same(by_rows(t, list),
                    t:index_select(1, ember.tensor(list, {dtype = "int64"})):totable())
  end)

  it("names an index out of range and writes nothing", function()
    local t = ember.arange(1, 7):view(3, 2)
    for _, bad in ipairs{{1, 4}, {0}, {2, -1}} do
      local ok, err = pcall(t.index_select, t, 1, ember.tensor(bad, {dtype = "int64"}))
      assert.is_false(ok)
      assert.matches("index_select: index %-?%d+ is out of range for dimension 1 of size 3", err)
    end
    assert.are.same({{1, 2}, {3, 4}, {5, 6}}, t:totable())
  end)
end)

describe("index_select, index_copy_ and index_add_ on large tensors", function()
  -- past EMBER_CPU_PARALLEL_MIN elements the slice pairs run on threads when
  -- no two write one slice; each result is checked slice by slice
  local n, m = 300, 200                     -- 60000 elements
  local src = ember.randn(n, m)
  local perm = ember.randperm(m)            -- unique: the threaded walk
  local dup = ember.tensor({1, 5, 1, 5, 2}, {dtype = "int64"})  -- serial

  it("index_select along dim 2 takes every column it names", function()
    local out = src:index_select(2, perm)
    local p = perm:totable()
    for j = 1, m, 37 do
      assert.is_true(out:select(2, j):equal(src:select(2, p[j])))
    end
  end)

  it("index_copy_ writes every slice once (unique) and the last one wins (repeats)", function()
    local t = ember.zeros(n, m)
    t:index_copy_(2, perm, src)
    local p = perm:totable()
    for j = 1, m, 37 do
      assert.is_true(t:select(2, p[j]):equal(src:select(2, j)))
    end
    local u = ember.zeros(n, m)
    u:index_copy_(2, dup, src:narrow(2, 1, 5))
    assert.is_true(u:select(2, 1):equal(src:select(2, 3)))
    assert.is_true(u:select(2, 5):equal(src:select(2, 4)))
    assert.is_true(u:select(2, 2):equal(src:select(2, 5)))
  end)

  it("index_add_ sums repeated slices and adds unique ones", function()
    local t = ember.ones(n, m)
    t:index_add_(2, perm, src)
    local p = perm:totable()
    for j = 1, m, 37 do
      assert.is_true(t:select(2, p[j]):equal(src:select(2, j) + 1))
    end
    local u = ember.zeros(n, m)
    u:index_add_(2, dup, src:narrow(2, 1, 5))
    local want = src:select(2, 1) + src:select(2, 3)
    assert.is_true((u:select(2, 1) - want):abs():max():item() < 1e-6)
  end)

  -- dim 1 of contiguous float tensors (an embedding's backward): one loop
  -- over the rows, split across threads by columns, in index order
  for _, dt in ipairs{"float32", "float64"} do
    it("index_add_ of rows with repeats gives the serial sums on any thread count ("
       .. dt .. ")", function()
      local threads = ember.get_num_threads()
      local rows = ember.randn(2500, 96, {dtype = dt})
      local idx = ember.randint(1, 65, {2500})
      local ref = ember.zeros(65, 96, {dtype = dt})
      -- the strided walk (a transposed target), which adds in index order
      local refT = ref:t():contiguous():t()
      refT:index_add_(1, idx, rows)
      local out = {}
      for k, nt in ipairs{1, 2} do
        ember.set_num_threads(nt)
        out[k] = ember.zeros(65, 96, {dtype = dt}):index_add_(1, idx, rows)
      end
      ember.set_num_threads(threads)
      assert.is_true(out[1]:equal(out[2]))
      assert.is_true(out[1]:equal(refT))
      assert.is_true(ember.zeros(65, 96, {dtype = dt})
                     :index_add_(1, idx:narrow(1, 1, 0), rows:narrow(1, 1, 0))
                     :equal(ember.zeros(65, 96, {dtype = dt})))
      assert.has_error(function()
        ember.zeros(65, 96, {dtype = dt}):index_add_(1, idx + 65, rows)
      end)
    end)
  end
end)
