-- examples/gpt2/model.lua against Hugging Face's GPT2LMHeadModel: the
-- fixture spec/fixtures/gpt2 (spec/reference/make_gpt2_fixture.py) holds a
-- small GPT-2 saved by save_pretrained and the float32 logits PyTorch
-- computed; the KV cache against a full forward; the sampling options.
-- The PyTorch nn.Sequential fixture goes through nn.utils.from_pytorch.
local ember = require "ember"
local H = require "spec.nn.helper"
local nn = ember.nn

local DIR = "spec/fixtures/gpt2"
local gpt2 = dofile("examples/gpt2/model.lua")
local ref = dofile(DIR .. "/reference.lua")

--- Ember's ids (GPT-2's plus one) of reference prompt i, (1, T) int64.
local function prompt_ids(i)
  local t = {}
  for j, id in ipairs(ref.ids[i]) do t[j] = id + 1 end
  return ember.tensor(t, {dtype = "int64"}):view(1, -1)
end

--- got (a tensor) against a flat list want at 1e-5 relative (float32).
local function close(got, want, what)
  H.close(got, {shape = {#want}, data = want}, what, 1e-5)
end

describe("GPT-2 in Hugging Face's layout", function()
  local model = gpt2.load(DIR)

  it("reads config.json", function()
    local c = model.config
    assert.are.same({1001, 128, 64, 2, 4, 1e-5, "tanh"},
                    {c.vocab_size, c.n_positions, c.n_embd, c.n_layer, c.n_head, c.eps, c.gelu})
    assert.is_false(model.training)
  end)

  it("gives PyTorch's logits at every position of a prompt", function()
    local logits = ember.no_grad(function() return model(prompt_ids(3)) end)
    H.close(logits:view(-1), {shape = {#ref.all_logits.data}, data = ref.all_logits.data},
            "all positions", 1e-5)
    assert.are.same({1, #ref.ids[3], 1001}, logits:shape())
  end)

  it("gives PyTorch's logits at the last position of every prompt", function()
    for i = 1, #ref.prompts do
      local last = ember.no_grad(function() return model(prompt_ids(i), nil, true) end)
      close(last:view(-1), ref.last_logits[i], "prompt " .. i)
    end
  end)

  it("loads OpenAI's names too (no transformer. prefix, mask buffers, lm_head)", function()
    local sd = {}
    for k, v in pairs(nn.utils.to_pytorch(model:state_dict())) do
      sd[k:gsub("^transformer%.", "")] = v
    end
    sd["h.0.attn.bias"] = ember.ones(1, 1, 128, 128)
    sd["h.1.attn.masked_bias"] = ember.tensor(-1e4)
    sd["lm_head.weight"] = sd["wte.weight"]
    local again = gpt2.GPT2(model.config)
    local missing, unexpected = again:load_state_dict(nn.utils.from_pytorch(sd), {map = gpt2.hf_name})
    assert.are.same({}, missing)
    assert.are.same({}, unexpected)
    local x = prompt_ids(1)
    assert.is_true(again(x):equal(model(x)))
  end)

  it("the KV cache: a step at a time gives the full forward's logits and greedy tokens", function()
    local ids = prompt_ids(2)
    local out = model:generate(ids, 12, {temperature = 0})
    assert.are.same({1, ids:size(2) + 12}, out:shape())
    -- greedy without the cache: a full forward of the sequence so far each step
    local seq = ids
    ember.no_grad(function()
      for _ = 1, 12 do
        seq = ember.cat({seq, model(seq, nil, true)[{ {}, -1, {} }]:argmax(-1, true)}, 2)
      end
    end)
    assert.are.same(seq:totable(), out:totable())
    -- and the logits of a cached step are those of the full forward
    local cache = gpt2.cache()
    ember.no_grad(function()
      model(seq[{ {}, {1, -2} }], cache, true)
      local step = model(seq[{ {}, {-1} }], cache, true)
      local full = model(seq, nil, true)
      close(step:view(-1), full:view(-1):double():totable(), "cached step")
    end)
  end)

  it("generates past n_positions by restarting the cache on the last half window", function()
    local out = model:generate(prompt_ids(1):view(-1), 130, {temperature = 0})
    assert.are.equal(#ref.ids[1] + 130, out:numel())
    assert.are.equal(1, out:dim())
  end)

  it("sampling: top_k 1 and a tiny top_p are greedy, a seed repeats its draws", function()
    local ids = prompt_ids(4)
    local greedy = model:generate(ids, 8, {temperature = 0}):totable()
    assert.are.same(greedy, model:generate(ids, 8, {top_k = 1}):totable())
    assert.are.same(greedy, model:generate(ids, 8, {top_p = 1e-6, temperature = 0.7}):totable())
    local function draw(seed)
      return model:generate(ids, 16, {temperature = 1.5, top_k = 50, top_p = 0.95,
                                      generator = ember.Generator(seed)}):totable()
    end
    assert.are.same(draw(5), draw(5))
    assert.are_not.same(draw(5), draw(6))
  end)

  it("refuses a config it cannot run", function()
    H.fails("gpt2: config.json: activation_function 'relu' is not supported",
            gpt2.config, {activation_function = "relu"})
    H.fails("gpt2: config.json: n_embd (10) is not a multiple of n_head (3)",
            gpt2.config, {n_embd = 10, n_head = 3})
    H.fails("gpt2: 130 positions, the model has 128", model.forward, model,
            ember.ones(1, 130, {dtype = "int64"}))
  end)
end)

describe("a PyTorch nn.Sequential state dict", function()
  local fx = dofile("spec/fixtures/torch_sequential_values.lua")

  it("loads into the same Ember Sequential through from_pytorch and goes back", function()
    local m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    local sd = ember.load("spec/fixtures/torch_sequential.safetensors")
    H.fails("missing keys: 1.weight, 1.bias, 3.weight, 3.bias", m.load_state_dict, m, sd)
    m:load_state_dict(nn.utils.from_pytorch(sd))
    H.close(m(H.T(fx.x)), fx.y, "output")
    local back = nn.utils.to_pytorch(m:state_dict())
    local keys = {}
    for k, v in pairs(back) do
      keys[#keys + 1] = k
      assert.is_true(v:equal(sd[k]), k)
    end
    table.sort(keys)
    assert.are.same(fx.keys, keys)
  end)
end)
