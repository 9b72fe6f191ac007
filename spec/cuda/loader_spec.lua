-- The loader over CUDA tensors (GPU only; the stand-in plugin runs it on
-- machines without one, spec/bindings/fake_cuda_spec.lua): its shuffled
-- order is drawn on the CPU and goes to the data's device, so a batch is
-- the rows a CPU loader gives, on the device.  fit draws its batches from
-- the same loader, so a model fitted on CUDA data runs too.
local ember = require "ember"
local data = ember.data
local cuda_helper = require "helpers.cuda"

describe("the loader over CUDA tensors", function()
  if not cuda_helper.available() then return end

  it("gives the rows a CPU loader gives, on the device", function()
    local x, y = ember.arange(1, 12):float():view(11, 1), ember.arange(1, 12)
    ember.manual_seed(5)
    local want = {}
    for xb, yb in data.loader(x, y, {batch_size = 4, shuffle = true}) do
      want[#want + 1] = {xb:totable(), yb:totable()}
    end
    ember.manual_seed(5)
    local got = {}
    for xb, yb in data.loader(x:cuda(), y:cuda(), {batch_size = 4, shuffle = true}) do
      assert.are.equal("cuda", xb.device)
      assert.are.equal("cuda", yb.device)
      got[#got + 1] = {xb:cpu():totable(), yb:cpu():totable()}
    end
    assert.are.equal(3, #got)
    assert.are.same(want, got)
  end)

  it("feeds fit with CUDA data, shuffled", function()
    ember.manual_seed(0)
    local x = ember.randn(20, 3):cuda()
    local y = x:sum(2, true)
    local m = ember.nn.Linear(3, 1):cuda():compile{optimizer = "sgd", loss = "mse"}
    local h = m:fit(x, y, {epochs = 3, batch_size = 6, verbose = 0})
    assert.are.equal(3, #h.loss)
    assert.is_true(h.loss[3] < h.loss[1], "the loss did not fall")
  end)
end)
