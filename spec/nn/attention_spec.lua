-- nn.functional.scaled_dot_product_attention (core/ops/attention.c, the
-- fused CPU kernel core/cpu/attention.c): outputs and the gradients of q,
-- k, v against PyTorch's formula (spec/reference/attention_values.lua,
-- written by spec/reference/make_attention_reference.py): causal with
-- L = S, L < S and L > S, bool and float masks broadcast, a row with
-- nothing to attend, scale, non-contiguous, several 64-wide tiles, ties,
-- empty shapes, both float dtypes; then finite differences, memory, errors.
local ember = require "ember"
local F = ember.nn.functional
local G = require "helpers.gradcheck"

local cases = dofile("spec/reference/attention_values.lua")

local function build(t, dtype, transpose)
  local x = ember.tensor(t.data, {dtype = dtype}):view(t.shape)
  if transpose then x = x:transpose(-1, -2) end
  return x
end

local function maxabs(t)
  local m = 0
  for _, e in ipairs(t.data) do m = math.max(m, math.abs(e)) end
  return m
end

-- hint: the size of the products a gradient is the difference of (dp and
-- delta are sums of go * v), so that their rounding is allowed for
local function close(what, got, expected, dtype, hint)
  assert.are.same(expected.shape, got:shape(), what .. ": shape")
  assert.are.equal(dtype, got.dtype, what .. ": dtype")
  local vals = got:contiguous():reshape(-1):totable()
  -- float32 runs in float32 against a float64 formula: 1e-5 relative,
  -- with an absolute floor for the elements that cancel to near 0, in
  -- proportion to the tensor's largest element (ds = p (dp - delta)
  -- cancels: its rounding is that of dp, not of the result)
  local big = math.max(1, maxabs(expected), hint or 0)
  local rel = dtype == "float32" and 1e-5 or 1e-10
  local abs = (dtype == "float32" and 2e-6 or 1e-12) * big
  for i, e in ipairs(expected.data) do
    local v = vals[i]
    assert.is_true(math.abs(v - e) <= rel * math.abs(e) + abs,
      ("%s: element %d is %.17g, expected %.17g"):format(what, i, v, e))
  end
end

local function opts_of(c)
  local o = {is_causal = c.causal or nil, scale = c.scale}
  if c.mask then o.attn_mask = ember.tensor(c.mask.data, {dtype = c.mask.dtype}):view(c.mask.shape) end
  return o
end

describe("scaled_dot_product_attention against PyTorch's formula", function()
  for _, c in ipairs(cases) do
    it(("%s, %s"):format(c.name, c.dtype), function()
      local q = build(c.q, c.dtype, c.transpose):requires_grad_()
      local k = build(c.k, c.dtype, c.transpose):requires_grad_()
      local v = build(c.v, c.dtype, c.transpose):requires_grad_()
      if c.transpose then assert.is_false(q:is_contiguous()) end
      local out = F.scaled_dot_product_attention(q, k, v, opts_of(c))
      close("out", out, c.out, c.dtype)
      out:backward(build(c.w, c.dtype))
      local hint = maxabs(c.v) * math.max(maxabs(c.q), maxabs(c.k))
      close("grad q", q.grad, c.gq, c.dtype, hint)
      close("grad k", k.grad, c.gk, c.dtype, hint)
      close("grad v", v.grad, c.gv, c.dtype)
    end)
  end
end)

describe("scaled_dot_product_attention", function()
  before_each(function() ember.manual_seed(3) end)

  local function leaf(...) return ember.randn({...}, {dtype = "float64"}):requires_grad_() end

  it("has the gradients of finite differences (plain, causal, masks)", function()
    local q, k, v = leaf(2, 3, 4), leaf(2, 5, 4), leaf(2, 5, 3)
    G.check(function(a, b, c) return F.scaled_dot_product_attention(a, b, c) end, {q, k, v})
    G.check(function(a, b, c)
      return F.scaled_dot_product_attention(a, b, c, {is_causal = true, scale = 0.7})
    end, {q, k, v})
    local bm = ember.tensor({{true, false, true, true, false}, {false, false, false, false, false},
                             {true, true, true, true, true}}, {dtype = "bool"})
    G.check(function(a, b, c) return F.scaled_dot_product_attention(a, b, c, {attn_mask = bm}) end,
            {q, k, v})
    local fm = ember.randn(2, 3, 5, {dtype = "float64"})
    G.check(function(a, b, c) return F.scaled_dot_product_attention(a, b, c, {attn_mask = fm}) end,
            {q, k, v})
  end)

  it("gives a row with nothing to attend zeros and zero gradients", function()
    local q, k, v = leaf(1, 2, 3), leaf(1, 4, 3), leaf(1, 4, 2)
    local m = ember.tensor({{true, true, false, true}, {false, false, false, false}}, {dtype = "bool"})
    local out = F.scaled_dot_product_attention(q, k, v, {attn_mask = m})
    assert.are.same({0, 0}, out[{1, 2}]:totable())
    out:sum():backward()
    assert.are.same({0, 0, 0}, q.grad[{1, 2}]:totable())
  end)

  it("lets a NaN through", function()
    local q = ember.randn(1, 3, 2, {dtype = "float64"})
    q[{1, 2, 1}] = 0 / 0
    local out = F.scaled_dot_product_attention(q, ember.randn(1, 4, 2, {dtype = "float64"}),
                                               ember.randn(1, 4, 2, {dtype = "float64"}))
    local r = out[{1, 2}]:totable()
    assert.is_true(r[1] ~= r[1] and r[2] ~= r[2])
    local r1 = out[{1, 1}]:totable()
    assert.is_true(r1[1] == r1[1])
  end)

  it("keeps O(L) memory per head when causal (no L x L tensor)", function()
    -- the kernel's scratch is per thread and of the tile's size; what the
    -- op keeps (the output, the rows' log-sum-exp, the saved inputs) is
    -- all that ember.memory_allocated sees grow
    local L, E = 2048, 16
    local q = ember.randn(1, 2, L, E):requires_grad_()
    local k = ember.randn(1, 2, L, E):requires_grad_()
    local v = ember.randn(1, 2, L, E):requires_grad_()
    collectgarbage(); collectgarbage()
    local before = ember.memory_allocated()
    local out = F.scaled_dot_product_attention(q, k, v, {is_causal = true})
    local grown = ember.memory_allocated() - before
    local LxL = 2 * L * L * 4
    assert.is_true(grown <= 2 * L * (E + 1) * 4 + 4096, "forward kept " .. grown .. " bytes")
    out:sum():backward()
    collectgarbage(); collectgarbage()
    assert.is_true(ember.memory_allocated() - before < LxL / 8)
  end)

  it("works on threads as on one (large causal case)", function()
    local q, k, v = ember.randn(4, 300, 32), ember.randn(4, 300, 32), ember.randn(4, 300, 16)
    local a = F.scaled_dot_product_attention(q, k, v, {is_causal = true})
    local s = q:matmul(k:transpose(-1, -2)) * (1 / math.sqrt(32))
    s = s:masked_fill(ember.ones(300, 300, {dtype = "bool"}):triu(1), -math.huge)
    local ref = s:softmax(-1):matmul(v)
    assert.is_true((a - ref):abs():max():item() < 1e-5)
  end)

  it("has the same gradients on either backward path (whole batches, or two passes)", function()
    -- the CPU backward gives each thread whole batches when there are
    -- ATT_BATCHES_PER_THREAD (4) a thread or more, else runs two passes
    local saved = ember.get_num_threads()
    for _, threads in ipairs{1, 2} do
      ember.set_num_threads(threads)
      for _, N in ipairs{1, 3, 9} do
        local q, k, v = leaf(N, 130, 8), leaf(N, 100, 8), leaf(N, 100, 4)
        local w = ember.randn(N, 130, 4, {dtype = "float64"})
        F.scaled_dot_product_attention(q, k, v, {is_causal = true}):backward(w)
        local got = {q.grad, k.grad, v.grad}
        q.grad, k.grad, v.grad = nil, nil, nil
        local s = q:matmul(k:transpose(-1, -2)) * (1 / math.sqrt(8))
        s = s:masked_fill(ember.ones(130, 100, {dtype = "bool"}):triu(1), -math.huge)
        s:softmax(-1):matmul(v):backward(w)
        for i, want in ipairs{q.grad, k.grad, v.grad} do
          assert.is_true((got[i] - want):abs():max():item() < 1e-12,
            ("threads %d, N %d, input %d"):format(threads, N, i))
        end
      end
    end
    ember.set_num_threads(saved)
  end)

  it("refuses bad arguments, naming the function", function()
    local q, k, v = ember.randn(2, 3, 4), ember.randn(2, 5, 4), ember.randn(2, 5, 3)
    local sdpa = F.scaled_dot_product_attention
    local function err(pat, ...)
      local args = table.pack(...)
      assert.has_error_match(function() sdpa(table.unpack(args, 1, args.n)) end, pat)
    end
    err("scaled_dot_product_attention: expected a tensor for the key, got nil", q)
    err("expected a floating tensor for the query, got int64", ember.ones(2, 3, 4, {dtype = "int64"}), k, v)
    err("unknown option", q, k, v, {causal = true})
    err("dropout_p must be in %[0, 1%], got 1.5", q, k, v, {dropout_p = 1.5})
    err("generator: expected an ember.Generator, got string", q, k, v,
        {dropout_p = 0.5, generator = "seed"})
    err("is_causal must be a boolean", q, k, v, {is_causal = 1})
    err("last dim of key %(3%) to match that of query %(4%)", q, ember.randn(2, 5, 3), v)
    err("key and value to have the same length S, got 5 and 4", q, k, ember.randn(2, 4, 3))
    err("same batch dims", q, ember.randn(3, 5, 4), ember.randn(3, 5, 3))
    err("at least 2 dims", ember.randn(4), k, v)
    err("one dtype", q:double(), k, v)
    err("attn_mask should not be set when is_causal", q, k, v,
        {is_causal = true, attn_mask = ember.ones(3, 5, {dtype = "bool"})})
    err("attn_mask of dtype bool or float32", q, k, v, {attn_mask = ember.ones(3, 5, {dtype = "int64"})})
    err("does not broadcast to %(..., L, S%) = %(..., 3, 5%)", q, k, v,
        {attn_mask = ember.ones(3, 4, {dtype = "bool"})})
  end)

  it("accepts dropout_p = 0 and changes nothing on a failed call", function()
    local q, k, v = ember.randn(2, 3, 4), ember.randn(2, 5, 4), ember.randn(2, 5, 3)
    local a = F.scaled_dot_product_attention(q, k, v, {dropout_p = 0})
    local b = F.scaled_dot_product_attention(q, k, v)
    assert.are.same(a:totable(), b:totable())
  end)
end)

describe("scaled_dot_product_attention with dropout_p > 0", function()
  local sdpa = F.scaled_dot_product_attention
  local f64 = {dtype = "float64"}

  -- the math path by hand: the weights (a row with nothing to attend
  -- zeros), dropped where u < p for u drawn as F.dropout draws, then @ v
  local function by_hand(q, k, v, mask, p, gen)
    local s = q:matmul(k:transpose(-2, -1)) * (1 / math.sqrt(q:size(-1)))
    if mask then s = s:masked_fill(mask:logical_not(), -math.huge) end
    local w = F.softmax(s, -1)
    w = w:masked_fill(w:isnan(), 0)
    local keep = ember.rand_like(w, {generator = gen}):ge(p):to(w.dtype)
    return (w * keep * (1 / (1 - p))):matmul(v)
  end

  it("drops the weights as F.dropout would, from the generator", function()
    local q, k, v = ember.randn(2, 3, 5, 4, f64), ember.randn(2, 3, 6, 4, f64), ember.randn(2, 3, 6, 3, f64)
    local m = ember.rand(5, 6):gt(0.3)
    m[{2}] = false                                   -- row 2 attends nothing
    for _, p in ipairs{0.1, 0.5, 0.9} do
      local got = sdpa(q, k, v, {attn_mask = m, dropout_p = p, generator = ember.Generator(3)})
      local want = by_hand(q, k, v, m, p, ember.Generator(3))
      assert.is_true(((got - want):abs():max():item()) < 1e-12, "p = " .. p)
      assert.are.same({0, 0, 0}, got[{1, 1, 2}]:totable())
    end
  end)

  it("is causal top-left as the fused path, and p = 1 gives zeros", function()
    local q, k, v = ember.randn(1, 4, 3, f64), ember.randn(1, 6, 3, f64), ember.randn(1, 6, 2, f64)
    local tri = ember.ones(4, 6, {dtype = "bool"}):tril()
    local got = sdpa(q, k, v, {is_causal = true, dropout_p = 0.4, generator = ember.Generator(9)})
    local want = by_hand(q, k, v, tri, 0.4, ember.Generator(9))
    assert.is_true(((got - want):abs():max():item()) < 1e-12)
    assert.are.equal(0, sdpa(q, k, v, {dropout_p = 1}):abs():sum():item())
  end)

  it("has the gradients of its composition (finite differences, one draw)", function()
    local q = ember.randn(2, 3, 4, f64):requires_grad_()
    local k = ember.randn(2, 5, 4, f64):requires_grad_()
    local v = ember.randn(2, 5, 3, f64):requires_grad_()
    G.check(function(a, b, c)
      return sdpa(a, b, c, {is_causal = true, dropout_p = 0.3, generator = ember.Generator(4)})
    end, {q, k, v})
  end)

  it("draws from the default generator without one, and is otherwise reproducible", function()
    local q, k, v = ember.randn(1, 8, 4), ember.randn(1, 8, 4), ember.randn(1, 8, 4)
    ember.manual_seed(5)
    local a = sdpa(q, k, v, {dropout_p = 0.5})
    ember.manual_seed(5)
    local b = sdpa(q, k, v, {dropout_p = 0.5})
    assert.are.same(a:totable(), b:totable())
    assert.are_not.same(a:totable(), sdpa(q, k, v):totable())
  end)
end)
