--- bench/vmath_bench.lua -- float32 transcendentals and the row loops
-- that use them (issue 18): exp, tanh, sigmoid, GELU (erf and tanh forms),
-- SiLU of 4M floats, forward alone ("_fwd") and forward + backward
-- ("_fb"); softmax over the last dim of (4096, 64) and (64, 50257)
-- forward + backward; sum over the last dim of (4096, 64).  The cross
-- entropy [8192, 50257] case is bench/norm_bench.lua's, attention L 256
-- bench/attention_bench.lua's.  Its peer is bench/vmath_torch.py.
--
--   ./ember bench/vmath_bench.lua [cpu|cuda] [case prefix]
--
-- Timed with bench/timing.lua's method (median batch).  Threads:
-- EMBER_NUM_THREADS.  Output: "# device D threads N", then one
-- "<case> <ms per call>" a line.
local ember = require "ember"
local F = require("ember.nn").functional
local timing = dofile((arg and arg[0] or "bench/vmath_bench.lua"):gsub("[^/]*$", "") .. "timing.lua")

local dev = arg and arg[1] or "cpu"
local sync = dev == "cuda" and ember.cuda.synchronize or function() end
local only = arg and arg[2]

ember.manual_seed(1)
local N = 4 * 1024 * 1024
local x = (ember.randn(N) * 3):to(dev)
local xl = x:detach():requires_grad_()
local g = ember.randn(N):to(dev)

local UNARY = {
  {"exp", function(t) return t:exp() end},
  {"tanh", function(t) return t:tanh() end},
  {"sigmoid", function(t) return t:sigmoid() end},
  {"gelu_erf", function(t) return F.gelu(t) end},
  {"gelu_tanh", function(t) return F.gelu(t, "tanh") end},
  {"silu", function(t) return F.silu(t) end},
}

local CASES = {}
for _, u in ipairs(UNARY) do
  CASES[#CASES + 1] = {u[1] .. "_4M_fwd", function() u[2](x) end}
  CASES[#CASES + 1] = {u[1] .. "_4M_fb", function()
    xl.grad = nil
    u[2](xl):backward(g)
  end}
end
for _, s in ipairs({{4096, 64}, {64, 50257}}) do
  local a = ember.randn(s):to(dev):requires_grad_()
  local ga = ember.randn(s):to(dev)
  CASES[#CASES + 1] = {("softmax_%dx%d_fb"):format(s[1], s[2]), function()
    a.grad = nil
    a:softmax(2):backward(ga)
  end}
end
local r = ember.randn(4096, 64):to(dev)
CASES[#CASES + 1] = {"sum_4096x64", function() r:sum(2) end}

io.write(("# device %s threads %d\n"):format(dev, ember.get_num_threads()))
timing.run_cases(CASES, only, sync)
