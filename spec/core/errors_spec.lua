-- Every wrong call raises a Lua error naming the function, what was
-- expected and what came; a failed call changes nothing.
local ember = require "ember"

-- assert that fn raises an error whose message contains each pattern
local function fails_with(fn, ...)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  err = tostring(err)
  for _, pat in ipairs({...}) do
    assert.truthy(err:find(pat, 1, true), ("message %q lacks %q"):format(err, pat))
  end
  return err
end

describe("errors", function()
  local a = ember.ones(2, 3)

  it("wrong types name the function and the argument", function()
    fails_with(function() return ember.zeros("x") end, "zeros", "size or options table", "string")
    fails_with(function() return a:add("x") end, "add", "tensor or number expected, got string")
    fails_with(function() return a + {} end, "tensor or number expected, got table")
    fails_with(function() return ember.matmul(a, 3) end, "matmul", "tensor expected, got number")
    fails_with(function() return a:sum("x") end, "sum", "integer expected")
    fails_with(function() return ember.tensor({1, "x"}) end, "tensor: element [2] is a string")
    fails_with(function() return ember.tensor({{1, 2}, {3}}) end, "tensor", "has length 1, expected 2")
    fails_with(function() return ember.cat({a, 5}) end, "cat", "element 2 is a number")
  end)

  it("shapes that do not broadcast or align", function()
    fails_with(function() return a + ember.ones(4) end,
               "add: shapes [2,3] and [4] cannot be broadcast")
    fails_with(function() return a:matmul(ember.ones(4, 5)) end,
               "matmul: shapes [2,3] and [4,5] do not align (3 vs 4)")
    fails_with(function() return ember.cat({a, ember.ones(2, 2)}) end,
               "cat: tensor 2 has shape [2,2]")
    fails_with(function() return a:view(5) end, "view: shape [5] is invalid for input of size 6")
    fails_with(function() return a:view(-1, -1) end, "only one dimension can be -1")
    fails_with(function() return a:expand(4, 3) end, "expand: cannot expand shape [2,3] to [4,3]")
    fails_with(function() return a:t():view(6) end, "view:", "use reshape")
  end)

  it("indices and dimensions out of range", function()
    fails_with(function() return a[3] end, "index 3 is out of range for dimension 1 of size 2")
    fails_with(function() return a[0] end, "index 0 is out of range")
    fails_with(function() return a[1.5] end, "index must be an integer")
    fails_with(function() return a[1][4] end, "index 4 is out of range")
    fails_with(function() a[1][4] = 1 end, "index 4 is out of range")
    fails_with(function() return a:sum(3) end, "sum: dimension 3 out of range for a 2-d tensor")
    fails_with(function() return a:sum(0) end, "dimension 0 is invalid (dimensions count from 1)")
    fails_with(function() return a:narrow(2, 3, 2) end, "narrow: range 3..4 is out of bounds")
    fails_with(function() return a:select(1, 5) end, "select: index 5 is out of range")
    fails_with(function() return a:transpose(1, 4) end, "transpose: dimension 4 out of range")
    fails_with(function() return a:permute(1, 1) end, "permute: dimension 1 appears twice")
    local idx = ember.tensor({1, 4}, {dtype = "int64"})
    fails_with(function() return a:index_select(2, idx) end,
               "index_select: index 4 is out of range for dimension 2 of size 3")
    fails_with(function() return a:gather(2, ember.tensor({{0}, {1}}, {dtype = "int64"})) end,
               "gather: index 0 is out of range")
    fails_with(function() return a:index_select(2, ember.ones(2)) end,
               "expected an int64 or int32 index tensor, got float32")
  end)

  it("bad dtypes, sizes and values", function()
    fails_with(function() return ember.zeros(2, {dtype = "float8"}) end, "unknown dtype 'float8'")
    fails_with(function() return ember.zeros(-1) end, "size must be >= 0, got -1")
    fails_with(function() return ember.zeros(1, 1, 1, 1, 1, 1, 1, 1, 1) end, "at most 8 dimensions")
    fails_with(function() return ember.zeros(2^40, 2^40) end, "too large")
    -- a zero-size dim leaves no elements, but the strides would still overflow
    fails_with(function() return ember.zeros(0, 2^62, 2^62) end, "too large")
    fails_with(function() return ember.rand(2, {dtype = "int64"}) end, "rand: expected a floating dtype")
    fails_with(function() return ember.randint(5, 1, {2}) end, "randint: empty range")
    fails_with(function() return ember.arange(0, 10, 0) end, "arange: step must be nonzero")
    fails_with(function() return ember.tensor({1, 2}):item() end, "item: only a tensor with one element")
    fails_with(function() return ember.ones(0):max() end, "max: cannot reduce an empty tensor")
    fails_with(function() return a:cuda() end, "CUDA is not available")
    fails_with(function() return a:masked_fill(ember.ones(2, 3), 0) end, "expected a bool mask")
    fails_with(function()
      return ember.tensor({2}, {dtype = "int64"}) ^ ember.tensor({-1}, {dtype = "int64"})
    end, "integers to negative integer powers are not allowed")
  end)

  it("a failed in-place call leaves its input unchanged", function()
    local t = ember.tensor({{1, 2}, {3, 4}})
    local before = t:totable()
    assert.has_error(function() t:add_(ember.ones(3)) end)
    assert.has_error(function() t:add_(ember.ones(2, 2, 2)) end)   -- would change shape
    assert.has_error(function() t:masked_fill_(ember.ones(3):gt(0), 1) end)
    assert.has_error(function() t:copy(ember.ones(3)) end)
    assert.has_error(function() t:expand(3, 2, 2):add_(1) end)   -- writes alias
    assert.are.same(before, t:totable())
    local i = ember.tensor({1, 2}, {dtype = "int32"})
    assert.has_error(function() i:exp_() end)
    assert.has_error(function() i:div_(2) end)
    assert.are.same({1, 2}, i:totable())
  end)
end)
