-- examples/char_gpt/model.lua: the nanoGPT port run through the fused
-- attention kernel and a key/value cache.  With the port's weights it
-- gives the port's logits, loss and gradients; a cached forward, one token
-- a call, gives the logits of a full forward of the same positions; its
-- cached generate draws what the port's generate draws (greedy, within a
-- block) and keeps going past the block by restarting from half a block.
local ember = require "ember"
local nanogpt = dofile("examples/nanogpt/model.lua")
local char_gpt = dofile("examples/char_gpt/model.lua")

local CONFIG = {block_size = 8, vocab_size = 11, n_layer = 2, n_head = 2, n_embd = 12,
                dropout = 0.0, bias = false}

--- The port and the char_gpt model with the same weights, in dtype.
local function pair(dtype)
  ember.manual_seed(7)
  local port = nanogpt.GPT(nanogpt.GPTConfig(CONFIG)):to(dtype)
  local model = char_gpt.GPT(char_gpt.GPTConfig(CONFIG)):to(dtype)
  model:load_state_dict(port:state_dict())
  return port, model
end

local function max_diff(a, b)
  return (a:to("float64") - b:to("float64")):abs():max():item()
end

describe("examples/char_gpt/model.lua", function()
  local idx = ember.tensor({{1, 5, 2, 9, 11, 3, 4, 7}, {2, 2, 10, 6, 1, 8, 5, 3}}, {dtype = "int64"})
  local targets = ember.tensor({{5, 2, 9, 11, 3, 4, 7, 1}, {2, 10, 6, 1, 8, 5, 3, 4}}, {dtype = "int64"})

  for _, case in ipairs{{"float64", 1e-12}, {"float32", 2e-6}} do
    local dtype, tol = case[1], case[2]
    it("gives the port's logits, loss and gradients (" .. dtype .. ")", function()
      local port, model = pair(dtype)
      local l1, loss1 = port(idx, targets)
      local l2, loss2 = model(idx, targets)
      assert.is_true(max_diff(l1, l2) < tol)
      assert.is_true(math.abs(loss1:item() - loss2:item()) < tol)
      loss1:backward()
      loss2:backward()
      local grads = {}
      for name, p in port:named_parameters() do grads[name] = p.grad end
      for name, p in model:named_parameters() do
        assert.is_true(max_diff(grads[name], p.grad) < tol * 10, name)
      end
    end)

    it("gives a full forward's logits one cached token at a time (" .. dtype .. ")", function()
      local _, model = pair(dtype)
      model:eval()
      ember.no_grad(function()
        local cache = char_gpt.cache()
        local first = model(idx[{ {}, {1, 3} }], nil, cache)
        assert.is_true(max_diff(first, model(idx[{ {}, {1, 3} }])) < tol)
        for t = 4, 8 do
          local cached = model(idx[{ {}, {t} }], nil, cache)
          assert.are.same({2, 1, 11}, cached:shape())
          assert.is_true(max_diff(cached, model(idx[{ {}, {1, t} }])) < tol, "position " .. t)
        end
        assert.are.equal(8, cache.len)
      end)
    end)
  end

  it("refuses more than one token a call after the prompt, and past the block", function()
    local _, model = pair("float64")
    local cache = char_gpt.cache()
    model(idx[{ {}, {1, 7} }], nil, cache)
    assert.has_error(function() model(idx[{ {}, {1, 2} }], nil, cache) end,
                     "GPT: a cached forward takes one token a call after the prompt, got 2")
    model(idx[{ {}, {8} }], nil, cache)
    assert.has_error(function() model(idx[{ {}, {8} }], nil, cache) end)
  end)

  it("generates greedily as the port does within a block, and goes on past it", function()
    local port, model = pair("float64")
    port:eval()
    model:eval()
    local start = idx[{ {}, {1, 2} }]
    assert.are.same(port:generate(start, 6, 0.8, 1):totable(),
                    model:generate(start, 6, 0.8, 1):totable())
    local long = model:generate(start, 30, 1.0, 3, ember.Generator(1))
    assert.are.same({2, 32}, long:shape())
    assert.is_true(long:min():item() >= 1 and long:max():item() <= CONFIG.vocab_size)
  end)
end)
