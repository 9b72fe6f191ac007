-- CPU/GPU parity of ember.lstm_cell and ember.gru_cell (core/cuda/rnn.cu),
-- forward and gradients, float32 and float64, and the layers on the device.  The
-- device computes float32 in float (expf, tanhf), the CPU through double:
-- float32 within a few ulps.  Without a CUDA device this file is one
-- pending test that says why (spec/helpers/cuda.lua).
local ember = require "ember"
local cuda_helper = require "helpers.cuda"

local function compare(what, dev, cpu, tol)
  if cpu:numel() == 0 then                -- an empty batch: shapes only
    assert.are.same(cpu:shape(), dev:shape(), what .. ": shape")
    return
  end
  assert.are.equal("cuda", dev.device:sub(1, 4), what .. ": device")
  assert.are.same(cpu:shape(), dev:shape(), what .. ": shape")
  local err = ((dev:cpu() - cpu):abs() / (cpu:abs() + 1)):max():item()
  assert.is_true(err <= tol, ("%s: relative error %g"):format(what, err))
end

describe("lstm_cell on cuda", function()
  if not cuda_helper.available() then return end
  before_each(function() ember.manual_seed(5) end)

  for _, case in ipairs{{"float32", 1e-5}, {"float64", 1e-12}} do
    local dt, tol = case[1], case[2]
    it("matches the CPU, forward and gradients (" .. dt .. ")", function()
      for _, s in ipairs{{4, 3}, {50, 128}, {0, 2}} do
        local g0 = ember.randn(s[1], 4 * s[2], {dtype = dt}) * 2
        local c0 = ember.randn(s[1], s[2], {dtype = dt})
        local wh, wc = ember.randn(s[1], s[2], {dtype = dt}), ember.randn(s[1], s[2], {dtype = dt})
        local out = {}
        for k, dev in ipairs{"cpu", "cuda"} do
          local g, c = g0:to(dev):detach():requires_grad_(), c0:to(dev):detach():requires_grad_()
          local h2, c2 = ember.lstm_cell(g, c)
          ;((h2 * wh:to(dev)):sum() + (c2 * wc:to(dev)):sum()):backward()
          out[k] = {h2:detach(), c2:detach(), g.grad, c.grad}
        end
        for j, name in ipairs{"h", "c", "d gates", "d c_prev"} do
          compare(("[%d,%d] %s"):format(s[1], s[2], name), out[2][j], out[1][j], tol)
        end
      end
    end)
  end

  it("runs nn.LSTM on the device as on the CPU", function()
    local lstm = ember.nn.LSTM(5, 4, {num_layers = 2})
    local x = ember.randn(3, 6, 5)
    local y, st = lstm(x)
    local yd, std = lstm:to("cuda")(x:to("cuda"))
    compare("output", yd, y, 1e-5)
    compare("c_n", std[2], st[2], 1e-5)
  end)

  for _, case in ipairs{{"float32", 1e-5}, {"float64", 1e-12}} do
    local dt, tol = case[1], case[2]
    it("gru_cell matches the CPU, forward and gradients (" .. dt .. ")", function()
      for _, s in ipairs{{4, 3}, {50, 128}, {0, 2}} do
        local x0 = ember.randn(s[1], 3 * s[2], {dtype = dt}) * 2
        local y0 = ember.randn(s[1], 3 * s[2], {dtype = dt}) * 2
        local h0, w = ember.randn(s[1], s[2], {dtype = dt}), ember.randn(s[1], s[2], {dtype = dt})
        local out = {}
        for k, dev in ipairs{"cpu", "cuda"} do
          local gx = x0:to(dev):detach():requires_grad_()
          local gh = y0:to(dev):detach():requires_grad_()
          local h = h0:to(dev):detach():requires_grad_()
          local hn = ember.gru_cell(gx, gh, h)
          ;(hn * w:to(dev)):sum():backward()
          out[k] = {hn:detach(), gx.grad, gh.grad, h.grad}
        end
        for j, name in ipairs{"h'", "d gx", "d gh", "d h"} do
          compare(("[%d,%d] %s"):format(s[1], s[2], name), out[2][j], out[1][j], tol)
        end
      end
    end)
  end

  it("runs nn.GRU on the device as on the CPU", function()
    local gru = ember.nn.GRU(5, 4, {num_layers = 2})
    local x = ember.randn(3, 6, 5)
    local y, hn = gru(x)
    local yd, hnd = gru:to("cuda")(x:to("cuda"))
    compare("output", yd, y, 1e-5)
    compare("h_n", hnd, hn, 1e-5)
  end)
end)
