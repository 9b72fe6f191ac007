-- CPU/GPU parity of slicing (t[{...}], t[{...}] = v) and of index_copy_ /
-- index_fill_ (GPU only; on the stand-in plugin without a GPU).  Data is
-- moved, never computed, so values must equal the CPU's exactly; a bad
-- index in a write is reported by the next synchronising call with the
-- CPU's message.  Without a CUDA device this file is one pending test that
-- says why (spec/helpers/cuda.lua).
local ember = require "ember"
local cuda_helper = require "helpers.cuda"

local function long(t, dev) return ember.tensor(t, {dtype = "int64"}):to(dev or "cpu") end

local function same(what, dev, cpu)
  assert.are.equal("cuda", dev.device:sub(1, 4), what .. ": device")
  assert.are.same(cpu:shape(), dev:shape(), what .. ": shape")
  assert.are.equal(cpu.dtype, dev.dtype, what .. ": dtype")
  assert.are.same(cpu:reshape(-1):totable(), dev:cpu():reshape(-1):totable(), what .. ": values")
end

local function input(shape, dtype)
  local x = ember.randn(shape, {dtype = "float64"}) * 3
  if dtype == "bool" then return x:gt(0) end
  if dtype == "uint8" then return x:abs():to(dtype) end
  return x:to(dtype)
end

describe("slicing on cuda", function()
  if not cuda_helper.available() then return end
  before_each(function() ember.manual_seed(5) end)

  local DTYPES = {"float32", "float64", "int32", "int64", "uint8", "bool"}
  local KEYS = {
    function() return {{}, {2, 3}} end,
    function() return {{1, -2}, {1, 5, 2}} end,
    function() return {-1, {2}} end,
    function(dev) return {long({3, 1, 3}, dev)} end,
    function(dev) return {{}, long({5, 1}, dev)} end,
    function(dev) return {2, long({4, 4}, dev)} end,
  }

  for _, dtype in ipairs(DTYPES) do
    it(dtype .. " reads and writes match the CPU (contiguous and transposed)", function()
      for _, transpose in ipairs({false, true}) do
        local x = input(transpose and {5, 3} or {3, 5}, dtype)
        if transpose then x = x:t() end
        local d = x:to("cuda")
        if transpose then d = x:t():to("cuda"):t() end
        for i, key in ipairs(KEYS) do
          local what = ("%s key %d%s"):format(dtype, i, transpose and " (transposed)" or "")
          same(what .. " read", d[key("cuda")], x[key("cpu")])
          local xc, dc = x:clone(), d:clone()
          xc[key("cpu")] = 1
          dc[key("cuda")] = 1
          same(what .. " fill", dc, xc)
          local src = input(x[key("cpu")]:shape(), dtype)
          xc[key("cpu")] = src
          dc[key("cuda")] = src:to("cuda")
          same(what .. " copy", dc, xc)
        end
      end
    end)

    it(dtype .. " index_copy_ and index_fill_ match the CPU", function()
      local x = input({4, 6}, dtype)
      local src = input({4, 3}, dtype)
      same("index_copy", x:to("cuda"):index_copy(2, long({6, 1, 3}, "cuda"), src:to("cuda")),
           x:index_copy(2, long({6, 1, 3}), src))
      same("index_fill", x:to("cuda"):index_fill_(1, long({4, 2}, "cuda"), 1),
           x:clone():index_fill_(1, long({4, 2}), 1))
    end)
  end

  it("gradients through slicing on the device equal the CPU's", function()
    local grads = {}
    for _, dev in ipairs({"cpu", "cuda"}) do
      local x = ember.arange(12, {dtype = "float64"}):view(3, 4):to(dev):requires_grad_()
      local w = ember.tensor({2, 3}, {dtype = "float64"}):to(dev):requires_grad_()
      local b = x * 1
      b[{{}, long({4, 1}, dev)}] = 0
      b[{2, {1, 3, 2}}] = w
      local y = b[{{1, -1, 2}, {2, 4}}]:sum() + b:sum()
      y:backward()
      grads[dev] = {x.grad, w.grad}
    end
    same("x grad", grads.cuda[1], grads.cpu[1])
    same("w grad", grads.cuda[2], grads.cpu[2])
  end)

  it("a bad index in a write is reported by the next sync with the CPU's message", function()
    local d = ember.zeros(2, 3):to("cuda")
    assert(pcall(ember.cuda.synchronize))
    local ok = pcall(function() d:index_copy_(1, long({3}, "cuda"), ember.ones(1, 3):to("cuda")) end)
    assert.is_true(ok)
    local sok, err = pcall(ember.cuda.synchronize)
    assert.is_false(sok)
    assert.is_truthy(tostring(err):find("index_copy_: index 3 is out of range for dimension 1 of size 2", 1, true), tostring(err))
    ok = pcall(function() d[{{}, long({4}, "cuda")}] = 1 end)
    assert.is_true(ok)
    sok, err = pcall(ember.cuda.synchronize)
    assert.is_false(sok)
    assert.is_truthy(tostring(err):find("index_fill_: index 4 is out of range for dimension 2 of size 3", 1, true), tostring(err))
    assert(pcall(ember.cuda.synchronize))
  end)
end)
