--- bench/half_elementwise_bench.lua -- elementwise ops on bfloat16 and
-- float16 against the same op on float32 and against PyTorch's bfloat16
-- (bench/half_elementwise_torch.py, run from here so both sides run in the
-- same run, on the same machine, with the same thread count).
--
-- Cases, on 4M elements (1-D): x + y, x * 2 (a broadcast scalar), gelu(x)
-- and gelu forward + backward, each in float32, bfloat16 and float16.  Timed with
-- bench/timing.lua's method (the median of 5 batches of >= 0.2 s).
-- Output: one line per case, "<case> <ember ms> <torch ms> <ratio>".
--   lua5.4 bench/half_elementwise_bench.lua   (from the repository root,
--   with LUA_PATH/LUA_CPATH set as bench/run.sh sets them, or ./ember)
local ember = require "ember"
local F = ember.nn.functional
local dir = (arg and arg[0] or "bench/half_elementwise_bench.lua"):gsub("[^/]*$", "")
local timing = dofile(dir .. "timing.lua")

local N = 4 * 1024 * 1024
local OPS = {   -- the peer's OPS, in its order
  {"add", function(x, y) return x + y end},
  {"mul_scalar", function(x) return x * 2 end},
  {"gelu", function(x) return F.gelu(x) end},
  {"gelu_fwd_bwd", function(_, y, xg)   -- forward and backward, grad y
    xg.grad = nil
    F.gelu(xg):backward(y)
  end},
}
local DTYPES = {"float32", "bfloat16", "float16"}

local threads = ember.get_num_threads()
local peer = timing.peer(dir, "half_elementwise_torch.py", threads)

ember.manual_seed(1)
io.write(("# half elementwise, %d elements, %d thread(s): case, ember ms, torch ms, ratio\n")
  :format(N, threads))
for _, o in ipairs(OPS) do
  for _, dt in ipairs(DTYPES) do
    local name = o[1] .. "_" .. dt
    local x, y = ember.randn(N):to(dt), ember.randn(N):to(dt)
    local xg = x:detach():requires_grad_()
    local s = timing.per_call(function(reps)
      for _ = 1, reps do o[2](x, y, xg) end
    end, 1)
    local t = peer[name]
    io.write(("%-24s %9.3f %9s %6s\n"):format(name, s * 1e3,
      t and ("%.3f"):format(t) or "-", t and ("%.2f"):format(s * 1e3 / t) or "-"))
  end
end
