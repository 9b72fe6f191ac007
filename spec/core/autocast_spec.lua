-- ember.autocast and compile{mixed_precision}: which op runs in which
-- dtype (docs/lua-api.md, "Mixed precision").  The products round their
-- float32 operands to the autocast dtype and keep the float32 sums, so
-- each result is compared with the float32 op on operands rounded by hand;
-- everything else must be untouched.
local ember = require "ember"
local nn = ember.nn
local F = nn.functional

local MANT = {bfloat16 = 7, float16 = 10}

-- max |a - b| over the elements, relative to max |b| (float64)
local function rel(a, b)
  local d = (a:to("float64") - b:to("float64")):abs():max():item()
  local m = b:to("float64"):abs():max():item()
  return d / (m > 0 and m or 1)
end

-- t rounded to dt and widened back (what autocast hands a kernel)
local function r(t, dt) return t:to(dt):float() end

describe("ember.autocast", function()
  before_each(function() ember.manual_seed(11) end)

  it("sets and restores the dtype, also when fn raises", function()
    assert.is_false(ember.is_autocast_enabled())
    assert.is_false(ember.get_autocast_dtype())
    local inner, off = ember.autocast("bf16", function()
      return ember.get_autocast_dtype(), ember.autocast(false, ember.get_autocast_dtype)
    end)
    assert.are.equal("bfloat16", inner)
    assert.is_false(off)
    assert.are.equal("float16", ember.autocast("half", ember.get_autocast_dtype))
    local ok, err = pcall(ember.autocast, "bf16", function() error("boom", 0) end)
    assert.is_false(ok)
    assert.are.equal("boom", err)
    assert.is_false(ember.get_autocast_dtype())
    local a, b, c = ember.autocast("bf16", function(x, y) return x, y, 3 end, 1, 2)
    assert.are.same({1, 2, 3}, {a, b, c})
  end)

  it("refuses a dtype that is not a 16-bit float, and a non-callable", function()
    assert.has_error(function() ember.autocast("int32", print) end,
      "autocast: the dtype must be bfloat16 or float16, got int32")
    assert.has_error(function() ember.autocast("float32", print) end,
      "autocast: the dtype must be bfloat16 or float16, got float32")
    assert.has_error(function() ember.autocast("quarter", print) end)
    assert.has_error(function() ember.autocast(1, print) end,
      "autocast: expected a dtype name or false, got number")
    assert.has_error(function() ember.autocast("bf16", 42) end,
      "autocast: expected a function (or a module), got number")
    assert.is_false(ember.get_autocast_dtype())
  end)

  for _, dt in ipairs({"bfloat16", "float16"}) do
    it(dt .. ": matmul keeps the float32 sums of the rounded operands", function()
      local a, b = ember.randn(7, 33), ember.randn(33, 5)
      local y = ember.autocast(dt, function() return a:matmul(b) end)
      assert.are.equal("float32", y.dtype)
      assert.is_true(rel(y, r(a, dt):matmul(r(b, dt))) < 1e-6)
      -- batched and broadcast, and a transposed operand
      local a3, w = ember.randn(2, 4, 9), ember.randn(6, 9)
      local y3 = ember.autocast(dt, function() return a3:matmul(w:t()) end)
      assert.is_true(rel(y3, r(a3, dt):matmul(r(w, dt):t())) < 1e-6)
    end)

    it(dt .. ": matmul's gradients are float32, from half products", function()
      local a = ember.randn(6, 20):requires_grad_()
      local b = ember.randn(20, 4):requires_grad_()
      local g = ember.randn(6, 4)
      ember.autocast(dt, function() return a:matmul(b) end):backward(g)
      assert.are.equal("float32", a.grad.dtype)
      assert.are.equal("float32", b.grad.dtype)
      -- the gradient, rounded to dt as PyTorch's autocast gives it, times
      -- the rounded operand, summed in float32 and rounded once to dt
      local ga = r(r(g, dt):matmul(r(b, dt):t()), dt)
      local gb = r(r(a, dt):t():matmul(r(g, dt)), dt)
      local ulp = 2.0 ^ -MANT[dt]
      assert.is_true(rel(a.grad, ga) <= ulp, "a's gradient")
      assert.is_true(rel(b.grad, gb) <= ulp, "b's gradient")
    end)

    it(dt .. ": linear, conv2d and attention run on rounded operands", function()
      local lin = nn.Linear(12, 5)
      local x = ember.randn(3, 12)
      local y = ember.autocast(dt, lin, x)
      assert.are.equal("float32", y.dtype)
      local want = r(x, dt):matmul(r(lin.weight, dt):t()) + lin.bias
      assert.is_true(rel(y, want) < 1e-6)

      local w, bias, img = ember.randn(4, 3, 3, 3), ember.randn(4), ember.randn(2, 3, 7, 7)
      local c = ember.autocast(dt, function() return F.conv2d(img, w, bias, {padding = 1}) end)
      assert.are.equal("float32", c.dtype)
      assert.is_true(rel(c, F.conv2d(r(img, dt), r(w, dt), r(bias, dt), {padding = 1})) < 1e-6)

      local q, k, v = ember.randn(2, 2, 5, 8), ember.randn(2, 2, 6, 8), ember.randn(2, 2, 6, 8)
      local o = ember.autocast(dt, function() return F.scaled_dot_product_attention(q, k, v) end)
      assert.are.equal("float32", o.dtype)
      assert.is_true(rel(o, F.scaled_dot_product_attention(r(q, dt), r(k, dt), r(v, dt))) < 1e-6)
    end)
  end

  it("leaves every other op, float64 and half operands alone", function()
    local x = ember.randn(4, 6)
    local same = ember.autocast("bf16", function()
      return {F.softmax(x, 2), F.layer_norm(x, {6}), x:exp(), x:sum(),
              F.cross_entropy(x, ember.tensor({1, 2, 3, 4}, {dtype = "int64"})), x + x}
    end)
    local plain = {F.softmax(x, 2), F.layer_norm(x, {6}), x:exp(), x:sum(),
                   F.cross_entropy(x, ember.tensor({1, 2, 3, 4}, {dtype = "int64"})), x + x}
    for i = 1, #plain do
      assert.are.equal("float32", same[i].dtype)
      assert.is_true(same[i]:equal(plain[i]), "op " .. i)
    end
    local d = ember.randn(3, 4, {dtype = "float64"})
    local dd = ember.autocast("bf16", function() return d:matmul(d:t()) end)
    assert.are.equal("float64", dd.dtype)
    assert.is_true(dd:equal(d:matmul(d:t())))
    local h = ember.randn(3, 4):to("bf16")
    local hh = ember.autocast("bf16", function() return h:matmul(h:t()) end)
    assert.are.equal("bfloat16", hh.dtype)
    assert.is_true(hh:equal(h:matmul(h:t())))
    local i = ember.ones(2, 2, {dtype = "int64"})
    assert.are.equal("int64", ember.autocast("bf16", function() return i:matmul(i) end).dtype)
  end)

  it("keeps parameters, gradients and optimizer state in float32", function()
    local model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    local opt = ember.optim.AdamW(model:parameters(), {lr = 1e-2})
    local x, y = ember.randn(10, 8), ember.tensor({1, 2, 3, 1, 2, 3, 1, 2, 3, 1}, {dtype = "int64"})
    local first
    for step = 1, 20 do
      local out = ember.autocast("bf16", model, x)
      local loss = F.cross_entropy(out, y)
      first = first or loss:item()
      opt:zero_grad()
      loss:backward()
      opt:step()
      if step == 20 then assert.is_true(loss:item() < first) end
    end
    for _, p in ipairs(model:parameters()) do
      assert.are.equal("float32", p.dtype)
      assert.are.equal("float32", p.grad.dtype)
    end
  end)

  it("compile{mixed_precision} runs fit, evaluate and predict under autocast", function()
    local x = ember.randn(64, 4)
    local y = x:sum(2):gt(0):to("int64") + 1
    local model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    model:compile{optimizer = ember.optim.Adam(model:parameters(), {lr = 1e-2}),
                  loss = "sparse_categorical_crossentropy", mixed_precision = "bf16"}
    local h = model:fit(x, y, {epochs = 5, batch_size = 16, verbose = 0})
    assert.is_true(h.history.loss[5] < h.history.loss[1])
    local p = model:predict(x)
    assert.are.equal("float32", p.dtype)
    -- predict's forward ran under autocast: the rounded-operand result
    local want = ember.autocast("bf16", model, x)
    assert.is_true(p:equal(want))
    assert.are.equal("float32", model[1].weight.dtype)
    assert.is_false(ember.get_autocast_dtype())
    assert.has_error(function()
      model:compile{optimizer = "adam", loss = "mse", mixed_precision = "fp8"}
    end, "compile: mixed_precision must be \"bf16\", \"bfloat16\", \"half\", \"float16\" or false, got 'fp8'")
  end)
end)
