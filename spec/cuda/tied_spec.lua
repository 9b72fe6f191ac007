-- Tied parameters through the device conversions (spec/nn/tied_spec.lua
-- has the dtype ones and save/load): :cuda(), :to("cuda"), :to("cuda:N")
-- of the current device, and back with :cpu(), keep one tensor.
local ember = require "ember"
local cuda_helper = require "helpers.cuda"
local nn = ember.nn

describe("tied parameters on the GPU", function()
  if not cuda_helper.available() then return end

  it("stay tied through cuda(), to('cuda:N') and cpu()", function()
    local m = nn.Sequential{nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3)}
    m[3].weight = m[1].weight
    local dev = "cuda:" .. ember.cuda.current_device()
    for _, step in ipairs{function() m:cuda() end, function() m:to(dev) end,
                          function() m:cpu() end, function() m:to("cuda") end} do
      step()
      assert.are.equal(3, #m:parameters())
      assert.is_true(rawequal(m[1].weight, m[3].weight))
    end
    assert.are.equal("cuda", m[3].weight.device)
    m:compile{optimizer = "adam", loss = "mse"}
    m:fit(ember.randn(8, 3), ember.randn(8, 3), {epochs = 1, verbose = 0})
    assert.is_true(rawequal(m[1].weight, m[3].weight))
  end)
end)
