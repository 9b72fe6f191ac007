-- The encoding group (one_hot, bincount, histc, bucketize, searchsorted) on
-- the CUDA device: every PyTorch reference case of spec/core/encoding_spec.lua
-- runs on tensors moved to the device, and the result must be on the device
-- with exactly the reference values (so it also agrees with the CPU); plus
-- non-contiguous device inputs, the label errors, and mixed devices.
-- Without a device: one pending test that says why (spec/helpers/cuda.lua).
local ember = require "ember"
local cuda_helper = require "helpers.cuda"
local F = ember.nn.functional

local cases = dofile("spec/reference/encoding_values.lua")

describe("encoding ops on CUDA", function()
  if not cuda_helper.available() then return end

  local function build(v)
    if type(v) ~= "table" then return v end
    return ember.tensor(v.data, {dtype = v.dtype}):view(v.shape):cuda()
  end

  local function run(fn, a, opts)
    if fn == "one_hot" then return F.one_hot(a[1], a[2]) end
    if fn == "bincount" then return a[1]:bincount({minlength = a[2], weights = a[3]}) end
    if fn == "histc" then return a[1]:histc(a[2], a[3], a[4]) end
    return ember[fn](a[1], a[2], opts)
  end

  for i, c in ipairs(cases) do
    it(("%s case %d"):format(c.fn, i), function()
      local a = {}
      for k = 1, c.n do a[k] = build(c.args[k]) end
      local r = run(c.fn, a, c.opts)
      assert.are.equal("cuda", r.device:sub(1, 4))
      assert.are.equal(c.out.dtype, r.dtype)
      assert.are.same(c.out.shape, r:shape())
      assert.are.same(c.out.data, r:cpu():reshape(-1):totable())
    end)
  end

  it("agree with the CPU on non-contiguous device inputs", function()
    local lab = ember.tensor({{1, 2}, {3, 1}}, {dtype = "int64"})
    assert.are.same(F.one_hot(lab:t(), 3):totable(), F.one_hot(lab:cuda():t(), 3):cpu():totable())
    local x = ember.randn(6, 5)
    assert.are.same(x:t():histc(7):totable(), x:cuda():t():histc(7):cpu():totable())
    local s = ember.tensor{{1, 2}, {3, 4}}
    local v = ember.tensor{{2.5}, {0}}
    assert.are.same(ember.searchsorted(s:t(), v):totable(),
                    ember.searchsorted(s:cuda():t(), v:cuda()):cpu():totable())
    local b = ember.tensor({4, 1, 4, 2, 4, 7}, {dtype = "int64"})
    assert.are.same(b:bincount():totable(), b:cuda():bincount():cpu():totable())
  end)

  it("name a bad label, and mixed devices", function()
    local d = ember.tensor({1, 0}, {dtype = "int64"}):cuda()
    assert.has_error(function() F.one_hot(d) end, "one_hot: label 0 out of range (labels count from 1)")
    assert.has_error(function() d:bincount() end, "bincount: value 0 is not a bin (values count from 1)")
    assert.has_error(function() ember.bucketize(ember.tensor{1}:cuda(), ember.tensor{1}) end)
  end)
end)
