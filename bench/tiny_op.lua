--- bench/tiny_op.lua -- per-call time of a tiny op, `a + b` on two
-- 4-element float32 tensors (plain, and recording for autograd), of a tiny
-- forward + backward `(a + b):sum():backward()`, and of an empty loop for
-- scale.
-- Its peer is bench/tiny_op_torch.py (the same for PyTorch).
--
-- Timed with bench/timing.lua's method (about 1e6 calls a batch for a + b).
-- Nothing is subtracted: the loop's own cost is inside the op figure and
-- is reported on its own line so the reader can judge.
-- Output:  "add", "add_grad", "fwd_bwd" and "loop", each with microseconds.
local ember = require "ember"
local timing = dofile((arg and arg[0] or "bench/tiny_op.lua"):gsub("[^/]*$", "") .. "timing.lua")
local per_call = timing.per_call

local a, b = ember.ones(4), ember.ones(4)
local c
local add = per_call(function(reps)
  for _ = 1, reps do c = a + b end
end)
local ga, gb = ember.ones(4, {requires_grad = true}), ember.ones(4, {requires_grad = true})
local add_grad = per_call(function(reps)
  for _ = 1, reps do c = ga + gb end
end)
local fwd_bwd = per_call(function(reps)
  for _ = 1, reps do (ga + gb):sum():backward() end
end)
local loop = per_call(function(reps)
  for _ = 1, reps do c = a end
end)
assert(c == a)
io.write(string.format("add %.4f\nadd_grad %.4f\nfwd_bwd %.4f\nloop %.4f\n",
                       add * 1e6, add_grad * 1e6, fwd_bwd * 1e6, loop * 1e6))
