-- The encoding group of issue 17: nn.functional.one_hot, bincount, histc,
-- bucketize, searchsorted (lua/ember/encoding.lua).
--
-- Reference values from PyTorch live in spec/reference/encoding_values.lua,
-- written by spec/reference/make_encoding_reference.py: the inputs and
-- outputs are stored already shifted to Ember's 1-based labels and indices.
-- The results are integers or exact counts, so they must match exactly.
local ember = require "ember"
local F = ember.nn.functional

local cases = dofile("spec/reference/encoding_values.lua")

local function build(v)
  if type(v) ~= "table" then return v end
  return ember.tensor(v.data, {dtype = v.dtype}):view(v.shape)
end

local function L(t) return ember.tensor(t, {dtype = "int64"}) end

local function same(got, want_data, want_shape, want_dtype)
  assert.are.equal(want_dtype, got.dtype)
  assert.are.same(want_shape, got:shape())
  local flat = got:numel() == 0 and {} or got:reshape(-1):totable()
  assert.are.same(want_data, flat)
end

local function run(fn, a, opts)
  if fn == "one_hot" then return F.one_hot(a[1], a[2]) end
  if fn == "bincount" then return a[1]:bincount({minlength = a[2], weights = a[3]}) end
  if fn == "histc" then return a[1]:histc(a[2], a[3], a[4]) end
  return ember[fn](a[1], a[2], opts)
end

describe("encoding against PyTorch", function()
  for i, c in ipairs(cases) do
    it(("%s case %d"):format(c.fn, i), function()
      local a = {}
      for k = 1, c.n do a[k] = build(c.args[k]) end
      same(run(c.fn, a, c.opts), c.out.data, c.out.shape, c.out.dtype)
    end)
  end
end)

describe("one_hot", function()
  it("lights column c for label c, int64, default classes = max label", function()
    same(F.one_hot(L{2, 1}), {0, 1, 1, 0}, {2, 2}, "int64")
    same(F.one_hot(L{2}, 4), {0, 1, 0, 0}, {1, 4}, "int64")
  end)
  it("takes non-contiguous labels", function()
    local t = L{{1, 2}, {3, 1}}:t()           -- labels 1,3 / 2,1
    same(F.one_hot(t, 3), {1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0}, {2, 2, 3}, "int64")
  end)
  it("gives an empty result for empty labels with num_classes", function()
    same(F.one_hot(ember.zeros({0}, {dtype = "int64"}), 3), {}, {0, 3}, "int64")
  end)
  it("names a label out of range, and bad arguments", function()
    assert.has_error(function() F.one_hot(L{1, 0}) end,
                     "one_hot: label 0 out of range (labels count from 1)")
    assert.has_error(function() F.one_hot(L{1, 5}, 4) end,
                     "one_hot: label 5 out of range for 4 classes")
    assert.has_error(function() F.one_hot(ember.tensor{1.0}) end,
                     "one_hot: labels must be int64, got float32")
    assert.has_error(function() F.one_hot(ember.zeros({0}, {dtype = "int64"})) end,
                     "one_hot: cannot infer num_classes from an empty tensor")
    assert.has_error(function() F.one_hot(L{1}, 0) end, "one_hot: num_classes must be >= 1, got 0")
    assert.has_error(function() F.one_hot(L{1}, math.maxinteger) end, "one_hot: arange: too many elements")
    assert.has_error(function() F.one_hot(3) end, "one_hot: expected a tensor as argument 1, got number")
  end)
end)

describe("bincount", function()
  it("counts value v in bin v, as a method and a function", function()
    same(L{3, 1, 3}:bincount(), {1, 0, 2}, {3}, "int64")
    same(ember.bincount(L{3, 1, 3}, {minlength = 5}), {1, 0, 2, 0, 0}, {5}, "int64")
  end)
  it("accepts int32 and uint8 values and a non-contiguous input", function()
    same(ember.tensor({2, 2}, {dtype = "int32"}):bincount(), {0, 2}, {2}, "int64")
    same(ember.tensor({1, 2}, {dtype = "uint8"}):bincount(), {1, 1}, {2}, "int64")
    local t = L{{1, 2}, {3, 4}}:t():select(1, 1)   -- 1, 3 (stride 2)
    assert.is_false(t:is_contiguous())
    same(t:bincount(), {1, 0, 1}, {3}, "int64")
  end)
  it("sums weights in the weights' dtype", function()
    same(L{2, 2}:bincount({weights = ember.tensor({0.5, 0.25}, {dtype = "float64"})}),
         {0, 0.75}, {2}, "float64")
  end)
  it("gives minlength zeros for an empty input", function()
    same(ember.zeros({0}, {dtype = "int64"}):bincount({minlength = 3}), {0, 0, 0}, {3}, "int64")
    same(ember.zeros({0}, {dtype = "int64"}):bincount(), {}, {0}, "int64")
  end)
  it("names a value that is not a bin, and bad arguments", function()
    assert.has_error(function() L{1, 0}:bincount() end,
                     "bincount: value 0 is not a bin (values count from 1)")
    assert.has_error(function() L{-2, 1}:bincount() end,
                     "bincount: value -2 is not a bin (values count from 1)")
    assert.has_error(function() ember.tensor{1.0}:bincount() end,
                     "bincount: expected an integer tensor, got float32")
    assert.has_error(function() L{{1}}:bincount() end, "bincount: expected a 1-d tensor, got 2-d")
    assert.has_error(function() L{1}:bincount({weights = ember.tensor{1, 2}}) end,
                     "bincount: weights must be a 1-d tensor of 1 elements, as the input")
    assert.has_error(function() L{1}:bincount({weights = ember.tensor({true}, {dtype = "bool"})}) end,
                     "bincount: weights must be a number tensor, got bool")
    local ok, err = pcall(function() L{1}:bincount({minlength = math.maxinteger}) end)
    assert.is_false(ok)
    assert.matches("^[^\n]*bincount: ", err)
    assert.has_error(function() L{1}:bincount({minlength = -1}) end,
                     "bincount: minlength must be >= 0, got -1")
    assert.has_error(function() L{1}:bincount({bins = 2}) end,
                     "bincount: unknown option 'bins' (expected minlength, weights)")
  end)
end)

describe("histc", function()
  it("defaults to 100 bins over the data's range", function()
    local h = ember.tensor{0, 1}:histc()
    assert.are.same({100}, h:shape())
    assert.are.equal(1, h[1])
    assert.are.equal(1, h[100])
    assert.are.equal(2, h:sum():item())
  end)
  it("ignores NaN and values outside, takes non-contiguous input", function()
    same(ember.tensor{0 / 0, 1, 5}:histc(2, 0, 2), {0, 1}, {2}, "float32")
    local t = ember.tensor{{0, 2}, {1, 9}}:t()   -- 0, 1, 2, 9
    same(t:histc(2, 0, 2), {1, 2}, {2}, "float32")
  end)
  it("gives zeros for an empty input", function()
    same(ember.zeros({0}):histc(3, 0, 1), {0, 0, 0}, {3}, "float32")
  end)
  it("errors clearly", function()
    assert.has_error(function() L{1}:histc() end,
                     "histc: expected a float32 or float64 tensor, got int64")
    assert.has_error(function() ember.tensor{1}:histc(0) end, "histc: bins must be >= 1, got 0")
    assert.has_error(function() ember.tensor{1}:histc(2, 3, 1) end, "histc: max (1) must be >= min (3)")
    assert.has_error(function() ember.tensor{1, math.huge}:histc(2) end,
                     "histc: range [1.0, inf] is not finite")
  end)
end)

describe("bucketize and searchsorted", function()
  it("return PyTorch's insertion point + 1", function()
    same(ember.bucketize(ember.tensor{0, 1, 2}, ember.tensor{1, 2}), {1, 1, 2}, {3}, "int64")
    same(ember.bucketize(ember.tensor{0, 1, 2}, ember.tensor{1, 2}, {right = true}), {1, 2, 3}, {3}, "int64")
    same(ember.searchsorted(ember.tensor{1, 2}, ember.tensor{0, 1, 3}), {1, 1, 3}, {3}, "int64")
  end)
  it("take a scalar value, non-contiguous inputs, mixed dtypes", function()
    same(ember.searchsorted(ember.tensor{1, 2, 3}, 2.5), {3}, {}, "int64")
    local s = ember.tensor{{1, 2}, {3, 4}}:t()   -- rows 1,3 and 2,4
    same(ember.searchsorted(s, ember.tensor{{2}, {2}}), {2, 1}, {2, 1}, "int64")
    same(ember.bucketize(L{1, 5}, ember.tensor({1.5}, {dtype = "float64"})), {1, 2}, {2}, "int64")
  end)
  it("handle empty inputs and empty boundaries", function()
    same(ember.bucketize(ember.zeros({0}), ember.tensor{1}), {}, {0}, "int64")
    same(ember.bucketize(ember.tensor{1, 2}, ember.zeros({0})), {1, 1}, {2}, "int64")
    same(ember.searchsorted(ember.zeros({0}), ember.tensor{1}), {1}, {1}, "int64")
  end)
  it("error clearly", function()
    assert.has_error(function() ember.bucketize(ember.tensor{1}, ember.tensor{{1}}) end,
                     "bucketize: boundaries must be a 1-d tensor, got 2-d")
    assert.has_error(function() ember.bucketize(ember.tensor{1}, ember.tensor{1}, {side = "left"}) end,
                     "bucketize: unknown option 'side' (expected right)")
    assert.has_error(function() ember.searchsorted(ember.tensor{{1, 2}}, ember.tensor{{1}, {2}}) end,
                     "searchsorted: sorted [1,2] and values [2,1] must agree on every dim but the last")
    assert.has_error(function() ember.searchsorted(ember.tensor(1), ember.tensor{1}) end,
                     "searchsorted: sorted must have at least 1 dimension")
  end)
end)

describe("encoding ops record nothing", function()
  it("give results with no gradient", function()
    local w = ember.tensor({1, 2}, {requires_grad = true})
    assert.is_false(L{1, 2}:bincount({weights = w}).requires_grad)
    assert.is_false(w:histc(2).requires_grad)
  end)
end)
