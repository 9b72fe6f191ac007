-- RMSNorm, SiLU, Mish, ModuleList/ModuleDict moves and data.windows on
-- cuda: the same values and gradients as on the CPU (they are composed of
-- ops that each have a CUDA kernel).  Without a CUDA device this file is
-- one pending test that says why (spec/helpers/cuda.lua).
local ember = require "ember"
local nn = ember.nn
local F = nn.functional
local cuda_helper = require "helpers.cuda"

local function close(what, dev, cpu, tol)
  assert.are.equal("cuda", dev.device:sub(1, 4), what .. ": device")
  assert.are.same(cpu:shape(), dev:shape(), what .. ": shape")
  local a, b = cpu:reshape(-1):totable(), dev:cpu():reshape(-1):totable()
  for i = 1, #a do
    assert.is_true(math.abs(a[i] - b[i]) <= tol * math.max(1, math.abs(a[i])),
      ("%s: element %d: %.17g vs %.17g"):format(what, i, a[i], b[i]))
  end
end

describe("small layers on cuda", function()
  if not cuda_helper.available() then return end
  before_each(function() ember.manual_seed(4) end)

  for _, dtype in ipairs{"float32", "float64"} do
    local tol = dtype == "float32" and 1e-5 or 1e-12
    it("silu, mish and rms_norm match the CPU, forward and gradient (" .. dtype .. ")", function()
      local cases = {
        {"silu", function(x) return F.silu(x) end},
        {"mish", function(x) return F.mish(x) end},
        {"rms_norm", function(x, w) return F.rms_norm(x, {3, 4}, w) end},
      }
      for _, c in ipairs(cases) do
        local x0 = (ember.randn(2, 4, 3, {dtype = dtype}) * 3):transpose(2, 3)  -- non-contiguous
        local w0 = ember.randn(3, 4, {dtype = dtype})
        local r = ember.randn(2, 3, 4, {dtype = dtype})
        local xc, wc = x0:clone():requires_grad_(), w0:clone():requires_grad_()
        local xd = x0:to("cuda"):requires_grad_()
        local wd = w0:to("cuda"):requires_grad_()
        local yc, yd = c[2](xc, wc), c[2](xd, wd)
        close(c[1], yd, yc, tol)
        local lc, ld = (yc * r):sum(), (yd * r:to("cuda")):sum()
        lc:backward()
        ld:backward()
        close(c[1] .. " grad", xd.grad, xc.grad, tol)
        if c[1] == "rms_norm" then close("rms_norm grad weight", wd.grad, wc.grad, tol) end
      end
    end)
  end

  it("moves a ModuleDict of ModuleLists and runs it", function()
    local d = nn.ModuleDict{{"h", nn.ModuleList{nn.Linear(4, 4), nn.RMSNorm(4)}},
                            {"act", nn.SiLU()}}
    local x = ember.randn(3, 4)
    local function run(m, input)
      for _, layer in ipairs(m.h) do input = layer(input) end
      return m.act(input)
    end
    local want = run(d, x)
    d:cuda()
    assert.are.equal("cuda", d.h[1].weight.device:sub(1, 4))
    close("ModuleDict forward", run(d, x:to("cuda")), want, 1e-5)
  end)

  it("cuts windows of ids on the device", function()
    local ids = ember.arange(1, 51, {dtype = "int64"})
    local x, y = ember.data.windows(ids, 8, 4, {generator = ember.Generator(9)})
    local xd, yd = ember.data.windows(ids:to("cuda"), 8, 4, {generator = ember.Generator(9)})
    assert.are.equal("cuda", xd.device:sub(1, 4))
    assert.are.same(x:totable(), xd:cpu():totable())
    assert.are.same(y:totable(), yd:cpu():totable())
  end)
end)
