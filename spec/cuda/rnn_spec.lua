-- CPU/GPU parity of nn.LSTM, nn.GRU, nn.RNN and the cells (GPU only; on the
-- stand-in plugin without a GPU): the layers are composed of ember ops, so
-- this checks that every op they use runs on the device, keeps its result
-- there, and agrees with the CPU (matmuls may sum in another order: 1e-10
-- relative in float64).  Without a CUDA device this file is one pending
-- test that says why (spec/helpers/cuda.lua).
local ember = require "ember"
local nn = ember.nn
local cuda_helper = require "helpers.cuda"

local function compare(what, dev, cpu) cuda_helper.compare(what, dev, cpu, 1e-10) end

--- Run m on the CPU and a copy on the device from the same weights, input
-- and state; compare outputs, states and every gradient.
local function parity(name, m, x, hx)
  local md = nn.from_config(m:get_config())
  md:load_state_dict(m:state_dict())
  md:cuda()
  local function run(mod, dev)
    local xi = (dev and x:cuda() or x:clone()):requires_grad_(true)
    local h = hx
    if ember.is_tensor(hx) then h = dev and hx:cuda() or hx end
    if type(hx) == "table" and not ember.is_tensor(hx) then
      h = {dev and hx[1]:cuda() or hx[1], dev and hx[2]:cuda() or hx[2]}
    end
    local a, b = mod(xi, h)
    if type(b) == "table" then b = b[1] + b[2] * 2 end
    b = b or a * a      -- a cell other than LSTMCell returns h only
    local loss = a:sum() + (b * b):sum()
    loss:backward()
    return a, b, xi.grad
  end
  local a, b, g = run(m, false)
  local ad, bd, gd = run(md, true)
  compare(name .. " output", ad, a)
  compare(name .. " state", bd, b)
  compare(name .. " grad input", gd, g)
  for pname, p in m:named_parameters() do
    compare(name .. " grad " .. pname, md[pname].grad, p.grad)
  end
end

describe("recurrent layers on cuda", function()
  if not cuda_helper.available() then return end
  before_each(function() ember.manual_seed(5) end)
  local f64 = {dtype = "float64"}

  for _, kind in ipairs{"LSTM", "GRU", "RNN"} do
    it(kind .. ", 2 layers, bidirectional, with a state", function()
      local m = nn[kind](3, 4, {num_layers = 2, bidirectional = true, dtype = "float64"})
      local h = ember.randn(4, 2, 4, f64)
      parity(kind, m, ember.randn(2, 5, 3, f64), kind == "LSTM" and {h, h * 0.5} or h)
    end)
    it(kind .. "Cell", function()
      local m = nn[kind .. "Cell"](3, 4, {dtype = "float64"})
      parity(kind .. "Cell", m, ember.randn(2, 3, f64))
    end)
  end
end)
