-- nanoGPT's model.py ported line by line (examples/nanogpt/model.lua),
-- checked against PyTorch running the original on a tiny configuration with
-- the same deterministic weights: logits, loss, every gradient (weight
-- tying included), the last-position logits of inference, the parameter
-- counts, greedy generation past the block size (top_k = 1: topk, a
-- boolean-mask assignment, softmax, multinomial, cat, negative slices), and
-- crop_block_size (slicing a parameter and a buffer).
--
-- The values are in spec/reference/nanogpt_values.lua, written by
-- spec/reference/make_nanogpt_reference.py.
local ember = require "ember"
local nanogpt = dofile("examples/nanogpt/model.lua")
local REF = dofile("spec/reference/nanogpt_values.lua")

--- PyTorch's name of an Ember parameter: blocks are numbered from 0 there.
local function torch_name(name)
  return (name:gsub("^transformer%.h%.(%d+)", function(i)
    return "transformer.h." .. (tonumber(i) - 1)
  end))
end

--- The weights make_nanogpt_reference.py writes, parameter by parameter.
local function fill(model)
  ember.no_grad(function()
    for name, p in model:named_parameters() do
      local tname, phase = torch_name(name), 0
      for i = 1, #tname do phase = phase + tname:byte(i) end
      phase = (phase % 97) / 10
      local j = ember.arange(0, p:numel(), {dtype = "float64"})
      p:copy_(((j * 0.7 + phase):sin() * 0.3):view(p:shape()))
    end
  end)
end

local function tokens(rows) -- 0-based ids to 1-based, -1 (ignored) stays
  local t = ember.tensor(rows, {dtype = "int64"})
  return t + t:ge(0):long()
end

local function close(got, want, tol, what)
  assert.are.same(want.shape, got:shape(), what .. ": shape")
  local flat = got:to("float64"):reshape(-1):totable()
  for i, w in ipairs(want.data) do
    local g = flat[i]
    if math.abs(g - w) > tol * (1 + math.abs(w)) then
      error(("%s: element %d is %.17g, PyTorch %.17g"):format(what, i, g, w), 2)
    end
  end
end

local function model_of(dtype)
  local config = nanogpt.GPTConfig(REF.config)
  local model = nanogpt.GPT(config):to(dtype)
  fill(model)
  return model
end

for _, case in ipairs{{"float64", 1e-10}, {"float32", 2e-5}} do
  local dtype, tol = case[1], case[2]
  describe("nanoGPT's model.py, ported (" .. dtype .. ")", function()
    it("matches PyTorch's logits, loss and every gradient", function()
      local model = model_of(dtype)
      local logits, loss = model(tokens(REF.idx), tokens(REF.targets))
      close(logits, REF.logits, tol, "logits")
      assert.is_true(math.abs(loss:item() - REF.loss) <= tol * REF.loss, "loss")
      loss:backward()
      local seen = 0
      for name, p in model:named_parameters() do
        close(p.grad, REF.grads[torch_name(name)], tol * 10, "grad of " .. name)
        seen = seen + 1
      end
      local want = 0
      for _ in pairs(REF.grads) do want = want + 1 end
      assert.are.equal(want, seen)   -- the tied lm_head.weight counted once
      assert.are.equal(model.lm_head.weight, model.transformer.wte.weight)
    end)

    it("forwards only the last position without targets", function()
      local model = model_of(dtype)
      local logits, loss = model(tokens(REF.idx))
      assert.is_nil(loss)
      close(logits, REF.last, tol, "last logits")
    end)

    it("counts parameters and groups them for weight decay as PyTorch", function()
      local model = model_of(dtype)
      assert.are.equal(REF.num_params, model:get_num_params())
      local opt, decay, nodecay = model:configure_optimizers(0.1, 6e-4, {0.9, 0.95})
      assert.are.same({REF.decay, REF.nodecay}, {decay, nodecay})
      assert.are.equal(2, #opt.param_groups)
    end)

    it("generates greedily past the block size as PyTorch", function()
      local model = model_of(dtype)
      model:eval()
      local start = tokens(REF.idx)[{ {}, {1, 3} }]
      local out = model:generate(start, 9, 0.8, 1)
      assert.are.same(REF.generated, (out - 1):totable())
    end)

    it("crops the block size by slicing the position table and the masks", function()
      local model = model_of(dtype)
      model:crop_block_size(4)
      assert.are.same({4, REF.config.n_embd}, model.transformer.wpe.weight:shape())
      assert.is_true(model.transformer.wpe.weight.requires_grad)
      local idx, targets = tokens(REF.idx)[{ {}, {1, 4} }], tokens(REF.targets)[{ {}, {1, 4} }]
      local logits = model(idx, targets:contiguous())
      close(logits, REF.cropped, tol, "cropped logits")
      assert.has_error(function() model(tokens(REF.idx)) end)
    end)
  end)
end
