-- CPU/GPU parity of split, chunk, unbind, flip, roll, tile and
-- repeat_interleave (lua/ember/joining.lua): each runs on the CPU and on a
-- copy of its input on the device (a non-contiguous view made there too);
-- results must be on the device and equal exactly (they only move
-- elements), and so must the gradients of sum(out_i * w_i).
-- Without a CUDA device the file is one pending test that says why.
local ember = require "ember"
local cuda_helper = require "helpers.cuda"

local DTYPES = {"float32", "float64", "int32", "int64", "uint8", "bool"}

local CASES = {
  {"split", 2, 2}, {"split", {1, 3, 1}, -1}, {"split", 1, 1},
  {"chunk", 3, 1}, {"chunk", 2, -1},
  {"unbind", 2}, {"unbind", 1},
  {"flip", 1}, {"flip", {1, 2}},
  {"roll", 3}, {"roll", {1, -2}, {1, 2}},
  {"tile", {2, 1, 3}}, {"tile", 0, 2},
  {"repeat_interleave", 2}, {"repeat_interleave", 3, 2},
  {"repeat_interleave", "counts", 1},
}

local function run(case, x)
  local args = {table.unpack(case, 2)}
  for i, a in ipairs(args) do
    if a == "counts" then
      args[i] = ember.tensor({2, 0, 1, 3, 1}, {dtype = "int64"}):narrow(1, 1, x:size(1))
      if x.device ~= "cpu" then args[i] = args[i]:to(x.device) end
    end
  end
  local r = x[case[1]](x, table.unpack(args, 1, #case - 1))
  return ember.is_tensor(r) and {r} or r
end

local function name(case)
  local parts = {}
  for i = 2, #case do
    local a = case[i]
    parts[#parts + 1] = type(a) == "table" and "{" .. table.concat(a, ",") .. "}" or tostring(a)
  end
  return case[1] .. "(" .. table.concat(parts, ", ") .. ")"
end

describe("joining on the device", function()
  if not cuda_helper.available() then return end
  for _, case in ipairs(CASES) do
    it(name(case) .. " matches the CPU, every dtype, contiguous and strided", function()
      for _, dtype in ipairs(DTYPES) do
        ember.manual_seed(3)
        local cpu = ember.randint(0, 9, {4, 5}):to(dtype)
        local dev = cpu:to("cuda")
        assert.is_false(dev:t():contiguous():t():is_contiguous())
        for _, pair in ipairs({{cpu, dev}, {cpu, dev:t():contiguous():t()}}) do
          local a, b = run(case, pair[1]), run(case, pair[2])
          assert.are.equal(#a, #b)
          for i = 1, #a do
            assert.are.equal("cuda", b[i].device)
            assert.is_true(b[i]:cpu():equal(a[i]), name(case) .. " " .. dtype)
          end
        end
      end
    end)
    it(name(case) .. " gradient matches the CPU", function()
      ember.manual_seed(4)
      local x = ember.randn(4, 5):double()
      local grads = {}
      for k, dev in ipairs({"cpu", "cuda"}) do
        local leaf = x:to(dev):detach()
        leaf.requires_grad = true
        local loss
        for i, y in ipairs(run(case, leaf)) do
          local w = ember.arange(1, y:numel() + 1, {dtype = "float64"}):view(y:shape()):to(dev) * i
          local term = (y * w):sum()
          loss = loss and loss + term or term
        end
        loss:backward()
        assert.are.equal(dev, leaf.grad.device)
        grads[k] = leaf.grad:cpu()
      end
      assert.is_true(grads[2]:equal(grads[1]), name(case))
    end)
  end
end)
