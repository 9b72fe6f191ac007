-- data.transforms and the loader's transform/prefetch on cuda tensors
-- (GPU only; on the stand-in plugin without a GPU).  The transforms run
-- on the CPU (core/data_transforms.c) and the result goes back to the
-- device, so the values must equal the CPU's exactly.  Without a CUDA
-- device this file is one pending test that says why (spec/helpers/cuda.lua).
local ember = require "ember"
local cuda_helper = require "helpers.cuda"
local data = ember.data

describe("data.transforms on cuda", function()
  if not cuda_helper.available() then return end
  local tf = data.transforms{data.RandomCrop(6, {padding = 1}), data.RandomHorizontalFlip(),
                             data.Normalize({0.5, 0.1}, {2, 3}), data.RandomRotation(8)}

  it("a transform on a device batch is the CPU's, on the device", function()
    local x = ember.randn(5, 2, 7, 7)
    local out = tf(x:cuda(), {generator = ember.Generator(4)})
    assert.are.equal("cuda", out.device)
    assert.are.equal(0, (out:cpu() - tf(x, {generator = ember.Generator(4)})):abs():max():item())
  end)

  it("a loader over device tensors with transform and prefetch gives the CPU's batches", function()
    local X, Y = ember.randn(23, 2, 7, 7), ember.arange(1, 24)
    local function batches(x, y)
      local out = {}
      for xb, yb in data.loader(x, y, {batch_size = 5, shuffle = true, seed = 2,
                                       transform = tf, prefetch = 2}) do
        out[#out + 1] = {xb:cpu(), yb:cpu(), xb.device}
      end
      return out
    end
    local cpu, dev = batches(X, Y), batches(X:cuda(), Y:cuda())
    assert.are.equal(#cpu, #dev)
    for i = 1, #cpu do
      assert.are.equal("cuda", dev[i][3])
      assert.are.equal(0, (cpu[i][1] - dev[i][1]):abs():max():item())
      assert.are.equal(0, (cpu[i][2] - dev[i][2]):abs():max():item())
    end
  end)
end)
