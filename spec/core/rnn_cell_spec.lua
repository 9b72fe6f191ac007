-- ember.lstm_cell and ember.gru_cell: the fused LSTM and GRU steps
-- (core/ops/rnn.c, core/cpu/rnn.c).
-- Reference: the same step composed of elementwise ops (whose values the
-- nn rnn spec checks against PyTorch), forward and gradients; a float64
-- finite-difference gradient check; the argument errors.  PyTorch's LSTM
-- values through nn.LSTM / nn.LSTMCell are in spec/nn/rnn_spec.lua.
local ember = require "ember"
local gc = require "helpers.gradcheck"

--- The step as separate ops: h, c from gates (B, 4H) and c_prev (B, H).
local function composed(gates, c)
  local H = c:size(2)
  local i = gates:narrow(2, 1, H):sigmoid()
  local f = gates:narrow(2, H + 1, H):sigmoid()
  local g = gates:narrow(2, 2 * H + 1, H):tanh()
  local o = gates:narrow(2, 3 * H + 1, H):sigmoid()
  local c2 = f * c + i * g
  return o * c2:tanh(), c2
end

local function close(a, b, tol, what)
  local err = ((a - b):abs() / (b:abs() + 1)):max():item()
  assert.is_true(err <= tol, ("%s: relative error %g > %g"):format(what, err, tol))
end

describe("ember.lstm_cell", function()
  before_each(function() ember.manual_seed(11) end)

  for _, case in ipairs{{"float64", 1e-13}, {"float32", 2e-6}} do
    local dt, tol = case[1], case[2]
    it("matches the composed step, forward and gradients (" .. dt .. ")", function()
      for _, s in ipairs{{3, 5}, {1, 1}, {50, 128}, {7, 3}} do
        local B, H = s[1], s[2]
        local g0 = (ember.randn(B, 4 * H, {dtype = "float64"}) * 3):to(dt)
        local c0 = ember.randn(B, H, {dtype = dt})
        local wh, wc = ember.randn(B, H, {dtype = dt}), ember.randn(B, H, {dtype = dt})
        local res = {}
        for k, fn in ipairs{ember.lstm_cell, composed} do
          local g, c = g0:clone():requires_grad_(), c0:clone():requires_grad_()
          local h2, c2 = fn(g, c)
          ;((h2 * wh):sum() + (c2 * wc):sum()):backward()
          res[k] = {h2:detach(), c2:detach(), g.grad, c.grad}
        end
        for j, name in ipairs{"h", "c", "d gates", "d c_prev"} do
          close(res[1][j], res[2][j], tol, ("[%d,%d] %s"):format(B, H, name))
        end
        assert.are.equal(dt, res[1][1].dtype)
      end
    end)
  end

  it("passes a float64 finite-difference gradient check", function()
    local g = (ember.randn(3, 8, {dtype = "float64"}) * 2):requires_grad_()
    local c = ember.randn(3, 2, {dtype = "float64"}):requires_grad_()
    for part = 1, 2 do
      local ok, msg = gc.gradcheck(function(a, b) return (select(part, ember.lstm_cell(a, b))) end,
                                   {g, c}, {atol = 1e-7, rtol = 1e-6})
      assert.is_true(ok, msg)
    end
  end)

  it("takes non-contiguous inputs and gives h and c as views of one node", function()
    local g = ember.randn(12, 4, {dtype = "float64"}):t()     -- (4, 12): H = 3
    local c = ember.randn(3, 4, {dtype = "float64"}):t()
    local h1, c1 = ember.lstm_cell(g, c)
    local h2, c2 = composed(g, c)
    close(h1, h2, 1e-13, "h")
    close(c1, c2, 1e-13, "c")
    assert.is_true(h1:is_contiguous() and c1:is_contiguous())
    local gg = g:clone():requires_grad_()
    local h3, c3 = ember.lstm_cell(gg, c)
    assert.are.equal("SelectBackward", h3.grad_fn)
    ;(h3:sum() + c3:sum()):backward()
    assert.are.same({4, 12}, gg.grad:shape())
    close(gg.grad, g:clone():requires_grad_() and (function()
      local g2 = g:clone():requires_grad_()
      local h4, c4 = composed(g2, c)
      ;(h4:sum() + c4:sum()):backward()
      return g2.grad
    end)(), 1e-13, "d gates")
  end)

  it("needs only what asks for a gradient", function()
    local g = ember.randn(2, 8):requires_grad_()
    local h, c = ember.lstm_cell(g, ember.randn(2, 2))
    h:sum():backward()
    assert.are.same({2, 8}, g.grad:shape())
    local c0 = ember.randn(2, 2):requires_grad_()
    local _, c2 = ember.lstm_cell(ember.randn(2, 8), c0)
    c2:sum():backward()
    assert.is_true(c0.grad ~= nil)
    assert.is_nil(ember.no_grad(function() return (ember.lstm_cell(g, c)) end).grad_fn)
  end)

  it("handles an empty batch", function()
    local h, c = ember.lstm_cell(ember.zeros(0, 8), ember.zeros(0, 2))
    assert.are.same({0, 2}, h:shape())
    assert.are.same({0, 2}, c:shape())
  end)

  it("refuses bad arguments, naming itself", function()
    local cases = {
      {ember.zeros(2, 7), ember.zeros(2, 2), "expected gates %(B, 4H%) and c_prev %(B, H%), got %[2, ?7%] and %[2, ?2%]"},
      {ember.zeros(3, 8), ember.zeros(2, 2), "expected gates %(B, 4H%)"},
      {ember.zeros(8), ember.zeros(2), "expected gates %(B, 4H%)"},
      {ember.zeros(2, 8), ember.zeros(2, 2, {dtype = "float64"}), "c_prev is float64 but the gates are float32"},
      {ember.zeros(2, 8, {dtype = "int64"}), ember.zeros(2, 2, {dtype = "int64"}), "expected float gates, got int64"},
    }
    for _, k in ipairs(cases) do
      local ok, err = pcall(ember.lstm_cell, k[1], k[2])
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("lstm_cell: " .. k[3]), tostring(err))
    end
    assert.has_error(function() ember.lstm_cell(ember.zeros(2, 8)) end)
  end)
end)

--- The GRU step as separate ops: h' from gx, gh (B, 3H) and h (B, H).
local function gru_composed(gx, gh, h)
  local H = h:size(2)
  local r = (gx:narrow(2, 1, H) + gh:narrow(2, 1, H)):sigmoid()
  local z = (gx:narrow(2, H + 1, H) + gh:narrow(2, H + 1, H)):sigmoid()
  local n = (gx:narrow(2, 2 * H + 1, H) + r * gh:narrow(2, 2 * H + 1, H)):tanh()
  return n + z * (h - n)
end

describe("ember.gru_cell", function()
  before_each(function() ember.manual_seed(12) end)

  for _, case in ipairs{{"float64", 1e-13}, {"float32", 2e-6}} do
    local dt, tol = case[1], case[2]
    it("matches the composed step, forward and gradients (" .. dt .. ")", function()
      for _, s in ipairs{{3, 5}, {1, 1}, {50, 128}} do
        local B, H = s[1], s[2]
        local x0 = (ember.randn(B, 3 * H, {dtype = "float64"}) * 2):to(dt)
        local y0 = (ember.randn(B, 3 * H, {dtype = "float64"}) * 2):to(dt)
        local h0, w = ember.randn(B, H, {dtype = dt}), ember.randn(B, H, {dtype = dt})
        local res = {}
        for k, fn in ipairs{ember.gru_cell, gru_composed} do
          local gx, gh, h = x0:clone():requires_grad_(), y0:clone():requires_grad_(),
                            h0:clone():requires_grad_()
          local out = fn(gx, gh, h)
          ;(out * w):sum():backward()
          res[k] = {out:detach(), gx.grad, gh.grad, h.grad}
        end
        for j, name in ipairs{"h'", "d gx", "d gh", "d h"} do
          close(res[1][j], res[2][j], tol, ("[%d,%d] %s"):format(B, H, name))
        end
      end
    end)
  end

  it("passes a float64 finite-difference gradient check", function()
    local gx = (ember.randn(3, 6, {dtype = "float64"}) * 2):requires_grad_()
    local gh = (ember.randn(3, 6, {dtype = "float64"}) * 2):requires_grad_()
    local h = ember.randn(3, 2, {dtype = "float64"}):requires_grad_()
    local ok, msg = gc.gradcheck(ember.gru_cell, {gx, gh, h}, {atol = 1e-7, rtol = 1e-6})
    assert.is_true(ok, msg)
  end)

  it("takes non-contiguous inputs and an empty batch", function()
    local gx = ember.randn(6, 4, {dtype = "float64"}):t()
    local gh = ember.randn(6, 4, {dtype = "float64"}):t()
    local h = ember.randn(2, 4, {dtype = "float64"}):t()
    close(ember.gru_cell(gx, gh, h), gru_composed(gx, gh, h), 1e-13, "h'")
    assert.are.same({0, 2}, ember.gru_cell(ember.zeros(0, 6), ember.zeros(0, 6),
                                           ember.zeros(0, 2)):shape())
  end)

  it("refuses bad arguments, naming itself", function()
    local cases = {
      {ember.zeros(2, 7), ember.zeros(2, 6), ember.zeros(2, 2), "expected gx and gh %(B, 3H%) and h %(B, H%)"},
      {ember.zeros(2, 6), ember.zeros(3, 6), ember.zeros(2, 2), "expected gx and gh %(B, 3H%)"},
      {ember.zeros(2, 6), ember.zeros(2, 6, {dtype = "float64"}), ember.zeros(2, 2), "gx, gh and h must have one dtype, got float32, float64 and float32"},
      {ember.zeros(2, 6, {dtype = "int32"}), ember.zeros(2, 6, {dtype = "int32"}),
       ember.zeros(2, 2, {dtype = "int32"}), "expected a float h, got int32"},
    }
    for _, k in ipairs(cases) do
      local ok, err = pcall(ember.gru_cell, k[1], k[2], k[3])
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("gru_cell: " .. k[4]), tostring(err))
    end
  end)
end)
