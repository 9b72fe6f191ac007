--- bench/linear3d_bench.lua -- milliseconds per forward + backward of a
-- Linear(128, 512) on a (12, 64, 128) float32 input (a transformer's MLP
-- projection at batch 12, block 64): the 3-D input is folded into one
-- (768, 128) GEMM for the output, the input gradient and the weight
-- gradient (core/ops/matmul.c).  Output: "linear3d <milliseconds>".
local ember = require "ember"
local timing = dofile((arg and arg[0] or "bench/linear3d_bench.lua"):gsub("[^/]*$", "") .. "timing.lua")

ember.manual_seed(0)
local lin = ember.nn.Linear(128, 512)
local x = ember.randn(12, 64, 128):requires_grad_()
local step = timing.per_call(function(reps)
  for _ = 1, reps do
    lin.weight.grad, lin.bias.grad, x.grad = nil, nil, nil
    lin(x):sum():backward()
  end
end, 10)
io.write(string.format("linear3d %.4f\n", step * 1e3))
