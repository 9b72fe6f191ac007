-- nanogpt.lua: nanoGPT's character-level recipe (train.py's loop and
-- sample.py's sampling) on Ember, with the model of
-- examples/nanogpt/model.lua, a line-by-line port of nanoGPT's model.py.
-- It trains a small GPT on the "computers" fortunes and samples from it.
--   ./ember examples/nanogpt.lua                 (500 steps, a minute or two)
--   ./ember examples/nanogpt.lua --steps 20      (a quick run)
local ember = require "ember"
local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "examples"
local nanogpt = dofile(here .. "/nanogpt/model.lua")

local opt = dofile(here .. "/lib/options.lua")("nanogpt.lua", arg, {["--steps"] = {"integer", 500}})
local max_iters = opt["--steps"]
local batch_size, block_size = 16, 64

-- the data: a token per distinct character (UTF-8), ids 1.. in character order
local path = "/usr/share/games/fortunes/computers"
local f = assert(io.open(path, "rb"), path .. " is missing: apt-get install fortunes (make run does)")
local text = f:read("a"):gsub("\n%%\n", "\n\n")   -- drop the % separators
f:close()
local tok, data = ember.data.chars(text)
local n = data:size(1)
local train_data, val_data = data[{ {1, n * 9 // 10} }], data[{ {n * 9 // 10 + 1, n} }]
print(("%d characters, vocabulary of %d"):format(n, tok.vocab_size))

ember.manual_seed(1337)
-- poor man's data loader: random windows of the text, targets shifted by one
local function get_batch(split)
  return ember.data.windows(split == "train" and train_data or val_data, block_size, batch_size)
end

local model = nanogpt.GPT(nanogpt.GPTConfig{block_size = block_size, vocab_size = tok.vocab_size,
                                             n_layer = 2, n_head = 4, n_embd = 64, dropout = 0.0})
print(("number of parameters: %.2fM"):format(model:get_num_params() / 1e6))
local optimizer = model:configure_optimizers(0.1, 1e-3, {0.9, 0.99})

local function estimate_loss()
  model:eval()
  local out = {}
  ember.no_grad(function()
    for _, split in ipairs{"train", "val"} do
      local total = 0
      for _ = 1, 10 do
        local x, y = get_batch(split)
        local _, loss = model(x, y)
        total = total + loss:item()
      end
      out[split] = total / 10
    end
  end)
  model:train()
  return out
end

local t0 = ember.clock()
for iter = 1, max_iters do
  if iter == 1 or iter % 100 == 0 or iter == max_iters then
    local losses = estimate_loss()
    print(("step %d: train loss %.4f, val loss %.4f (%.1f s)"):format(
      iter, losses.train, losses.val, ember.clock() - t0))
  end
  local x, y = get_batch("train")
  local _, loss = model(x, y)
  optimizer:zero_grad()
  loss:backward()
  ember.nn.utils.clip_grad_norm_(model:parameters(), 1.0)
  optimizer:step()
end

-- sample.py: a fresh generator, so that sampling leaves the training stream alone
model:eval()
local g = ember.Generator(1337)
local start = tok:encode("\n"):view(1, 1)
local y = model:generate(start, 200, 0.8, 10, g)
print(tok:decode(y[1]))
