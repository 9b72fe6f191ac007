-- CPU/GPU parity of multinomial (core/cuda/sampling.cu), bernoulli and the
-- generator option (GPU only; runs on the stand-in plugin without a GPU).
-- Both multinomial kernels add the same doubles in the same order and
-- draw from the same Philox counters, so the same generator state must
-- give the very same indices on both devices; uniforms are bit-identical
-- too, so bernoulli and dropout masks match.  Bad weights are data errors:
-- on the GPU they are deferred to the next sync, with the CPU's message.
-- Without a CUDA device this file is one pending test that says why
-- (spec/helpers/cuda.lua).
local ember = require "ember"
local cuda_helper = require "helpers.cuda"

local function same(what, dev, cpu)
  assert.are.equal("cuda", dev.device:sub(1, 4), what .. ": device")
  assert.are.equal(cpu.dtype, dev.dtype, what .. ": dtype")
  assert.are.same(cpu:shape(), dev:shape(), what .. ": shape")
  assert.is_true(dev:cpu():equal(cpu), what .. ": values")
end

--- f(opts) on the CPU and on cuda from the same generator state.
local function parity(what, probs, n, opts)
  local g = ember.Generator(17)
  opts.generator = g
  local s = g:get_state()
  local c = ember.multinomial(probs, n, opts)
  local after = g:get_state()
  g:set_state(s)
  local d = ember.multinomial(probs:to("cuda"), n, opts)
  same(what, d, c)
  assert.are.same(after, g:get_state(), what .. ": the counter moves alike")
end

local function bare(msg) return (tostring(msg):gsub("^[^:\n]*:%d+: ", "")) end

describe("sampling on cuda", function()
  if not cuda_helper.available() then return end

  it("multinomial draws the CPU's indices from the same state", function()
    ember.manual_seed(4)
    local cases = {
      {"1-D", ember.rand(7)},
      {"2-D", ember.rand(5, 30)},
      {"several chunks", ember.rand(3, 5000)},
      {"zeros and ties", ember.tensor{{0, 1, 1, 0, 2, 2}, {3, 0, 0, 0, 0, 3}}},
      {"float64", ember.rand(4, 9, {dtype = "float64"})},
      {"strided", ember.rand(40, 6):t()},
      {"zero rows", ember.rand(0, 5)},
    }
    for _, c in ipairs(cases) do
      local what, p = c[1], c[2]
      parity(what .. " with replacement", p, 50, {replacement = true})
      parity(what .. " without replacement", p, 2, {})
    end
    parity("all categories without replacement", ember.rand(2, 3000), 3000, {})
  end)

  it("bad weights are deferred to the next sync with the CPU's message", function()
    local bad = {
      {ember.tensor{{1, 0}, {1, -1}}, 1, {}},
      {ember.tensor{{1, 0}, {0, 0}}, 1, {replacement = true}},
      {ember.tensor{1, 0, 0}, 2, {}},
      {ember.tensor{{0, 0}, {1, 0 / 0}}, 1, {}},   -- the bad element wins over the zero row
    }
    for _, b in ipairs(bad) do
      local ok, cpu_err = pcall(ember.multinomial, b[1], b[2], b[3])
      assert.is_false(ok)
      local d = b[1]:to("cuda")
      assert.is_true((pcall(ember.multinomial, d, b[2], b[3])), "the op itself must not raise")
      local sok, serr = pcall(ember.cuda.synchronize)
      assert.is_false(sok, "the next sync must raise")
      assert.are.equal(bare(cpu_err), bare(serr))
      assert.is_true((pcall(ember.cuda.synchronize)), "cleared once reported")
    end
    -- shape errors are found at once, as on the CPU
    assert.is_false((pcall(ember.multinomial, ember.ones(2):to("cuda"), 3)))
  end)

  it("bernoulli, bernoulli_, rand and dropout with a generator match the CPU", function()
    local p = ember.rand(100)
    local function both(f)
      local g = ember.Generator(9)
      local c = f(g, "cpu")
      g:manual_seed(9)
      return c, f(g, "cuda")
    end
    local c, d = both(function(g, dev) return ember.bernoulli(p:to(dev), {generator = g}) end)
    same("bernoulli", d, c)
    c, d = both(function(g, dev) return ember.zeros(50, {device = dev}):bernoulli_(0.3, {generator = g}) end)
    same("bernoulli_", d, c)
    c, d = both(function(g, dev) return ember.rand(20, {device = dev, generator = g}) end)
    same("rand", d, c)
    c, d = both(function(g, dev) return ember.nn.F.dropout(ember.ones(64, {device = dev}), 0.5, {generator = g}) end)
    same("dropout", d, c)
  end)
end)
