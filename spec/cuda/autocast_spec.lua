-- ember.autocast on the GPU against the CPU: a small MLP's forward and
-- gradients under autocast("bf16") (cuBLAS GemmEx with float32 sums, the
-- casts on the device).  Both sides round the same operands and sum in
-- float32 in their own order.  Without a CUDA device this file is one
-- pending test that says why (spec/helpers/cuda.lua).
local ember = require "ember"
local cuda_helper = require "helpers.cuda"
local nn = ember.nn

describe("autocast on cuda", function()
  if not cuda_helper.available() then return end

  for _, dt in ipairs({"bf16", "half"}) do
    it(dt .. ": an MLP's output and gradients match the CPU's", function()
      ember.manual_seed(5)
      local cpu = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 4))
      local gpu = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 4))
      gpu:load_state_dict(cpu:state_dict())
      gpu:cuda()
      local x = ember.randn(8, 16)
      local yc = ember.autocast(dt, cpu, x)
      local yg = ember.autocast(dt, gpu, x:cuda())
      cuda_helper.compare("output", yg, yc, 1e-4)
      yc:sum():backward()
      yg:sum():backward()
      local pc, pg = cpu:parameters(), gpu:parameters()
      for i = 1, #pc do
        assert.are.equal("float32", pg[i].grad.dtype)
        cuda_helper.compare("gradient " .. i, pg[i].grad, pc[i].grad, 2e-2)
      end
    end)
  end
end)
