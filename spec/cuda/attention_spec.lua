-- CPU/GPU parity of nn.functional.scaled_dot_product_attention
-- (core/cuda/attention.cu against core/cpu/attention.c): outputs and the
-- gradients of q, k, v, both float dtypes, causal with L = S, L < S and
-- L > S, bool and float masks with a row that sees nothing, several tiles.
-- The kernels sum in other orders (per row on the GPU, in 64-wide tiles
-- through GEMM on the CPU), so values agree within rounding.  Without a
-- CUDA device this file is one pending test that says why
-- (spec/helpers/cuda.lua).
local ember = require "ember"
local F = ember.nn.functional
local cuda_helper = require "helpers.cuda"

local compare = cuda_helper.compare

describe("scaled_dot_product_attention on cuda", function()
  if not cuda_helper.available() then return end
  before_each(function() ember.manual_seed(11) end)

  local CASES = {
    {"plain", {2, 3}, 5, 7, 4, 3, {}},
    {"causal L = S", {2}, 70, 70, 8, 5, {is_causal = true}},
    {"causal L < S", {2}, 5, 9, 4, 3, {is_causal = true}},
    {"causal L > S", {1, 2}, 9, 4, 4, 3, {is_causal = true}},
    {"bool mask, a dead row", {2}, 4, 6, 3, 2, {mask = "bool"}},
    {"float mask", {2, 2}, 66, 130, 3, 4, {mask = "float"}},
    {"empty S", {2}, 3, 0, 3, 2, {}},
  }
  for _, dt in ipairs{"float32", "float64"} do
    for _, c in ipairs(CASES) do
      it(("%s, %s"):format(c[1], dt), function()
        local B, L, S, E, Ev, o = c[2], c[3], c[4], c[5], c[6], c[7]
        local function shape(a, b) local s = {table.unpack(B)}; s[#s + 1] = a; s[#s + 1] = b; return s end
        local q = ember.randn(shape(L, E), {dtype = dt})
        local k = ember.randn(shape(S, E), {dtype = dt})
        local v = ember.randn(shape(S, Ev), {dtype = dt})
        local w = ember.randn(shape(L, Ev), {dtype = dt})
        local opts = {is_causal = o.is_causal}
        if o.mask == "bool" then
          local m = ember.rand(L, S):gt(0.4)
          m[{2}] = false
          opts.attn_mask = m
        elseif o.mask == "float" then
          opts.attn_mask = ember.randn(shape(L, S), {dtype = dt})
        end
        local res = {}
        for _, dev in ipairs{"cpu", "cuda"} do
          -- fresh leaves on each device (q:to("cpu") would be q itself)
          local function leaf(t) return t:to(dev):clone():requires_grad_() end
          local qd, kd, vd = leaf(q), leaf(k), leaf(v)
          local od = {is_causal = opts.is_causal, attn_mask = opts.attn_mask and opts.attn_mask:to(dev)}
          local out = F.scaled_dot_product_attention(qd, kd, vd, od)
          out:backward(w:to(dev))
          res[dev] = {out, qd.grad, kd.grad, vd.grad}
        end
        local tol = dt == "float32" and 1e-4 or 1e-11
        for i, what in ipairs{"out", "grad q", "grad k", "grad v"} do
          compare(what, res.cuda[i], res.cpu[i], tol)
        end
      end)
    end
  end
end)
