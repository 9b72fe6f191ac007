-- The logic group (any, all, isnan, isinf, isfinite, logical_and/or/xor/not)
-- on the CUDA device: every PyTorch reference case of spec/core/logic_spec.lua
-- runs on tensors moved to the device (a transposed input is transposed
-- there, so it is a non-contiguous device view), and the result must be a
-- bool tensor on the device with exactly the reference values (so it also
-- agrees with the CPU).  Mixed devices are an error naming the function.
-- Without a device: one pending test that says why (spec/helpers/cuda.lua).
local ember = require "ember"
local cuda_helper = require "helpers.cuda"

local cases = dofile("spec/reference/logic_values.lua")

describe("logic ops on CUDA", function()
  if not cuda_helper.available() then return end

  local function build(input)
    local t = ember.tensor(input.data, {dtype = input.dtype}):view(input.shape):cuda()
    if input.transpose then
      t = t:transpose(input.transpose[1], input.transpose[2])
    end
    return t
  end

  local function flat(t)
    t = t:cpu()
    if t:dim() == 0 then return {t:item()} end
    return t:reshape(-1):totable()
  end

  for _, c in ipairs(cases) do
    it(c.name, function()
      local ins = {}
      for i, x in ipairs(c.inputs) do ins[i] = build(x) end
      local r
      if ins[2] then
        r = ins[1][c.op](ins[1], ins[2])
      elseif c.args and c.args.dim then
        r = ember[c.op](ins[1], c.args.dim, {keepdim = c.args.keepdim or false})
      else
        r = ember[c.op](ins[1])
      end
      assert.equal("bool", r.dtype)
      assert.equal(ins[1].device, r.device)
      assert.same(c.expected.shape, r:shape())
      assert.same(c.expected.data, flat(r))
    end)
  end

  it("refuses operands on different devices, naming the function", function()
    local a, b = ember.ones(3):cuda(), ember.ones(3)
    for _, op in ipairs{"logical_and", "logical_or", "logical_xor"} do
      local ok, msg = pcall(ember[op], a, b)
      assert.is_false(ok)
      -- blamed on the caller's line, then the message
      assert.matches("^spec/cuda/logic_spec.lua:%d+: " .. op .. ": tensors on different devices %(cuda:?%d* and cpu%)", msg)
    end
  end)
end)
