-- char_gpt.lua: nanoGPT's CPU configuration (its README's "I only have a
-- macbook" run of config/train_shakespeare_char.py) on the fortunes
-- corpus: a character-level GPT of 4 layers, 4 heads, 128 wide, block 64,
-- batch 12, dropout 0; AdamW at 1e-3 (betas 0.9, 0.99), 100 warm-up steps
-- and cosine decay to 1e-4 over the run, weight decay 0.1 on the 2-D
-- weights only, gradient clipping at 1.0, tied input and output
-- embeddings.  It prints the training and validation loss every
-- --eval-every steps (each the mean over 20 random batches, nanoGPT's
-- eval_iters), then samples with temperature 0.8 and top-k 10 through a
-- key/value cache (examples/char_gpt/model.lua), a token costing O(T).
--
--   ./ember examples/char_gpt.lua                  (2000 steps, a few minutes)
--   ./ember examples/char_gpt.lua --steps 100 --eval-every 50 --sample 200
-- Options: --steps N (2000), --eval-every N (200), --eval-iters N batches
-- (20), --sample N characters (500, 0 for none), --seed N (1337),
-- --threads N (Ember's default: the cores), --checkpoint (activation
-- checkpointing of every block: less memory, about a third more time),
-- --bf16 (mixed precision: the forward under ember.autocast("bf16"), the
-- products in bfloat16 with float32 sums; weights and AdamW's state stay
-- float32).
-- The warm-up is min(100, steps / 10) steps, so short runs decay too.
local ember = require "ember"
local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "examples"
local fortunes = dofile(here .. "/char_gpt/fortunes.lua")
local char_gpt = dofile(here .. "/char_gpt/model.lua")

local opt = dofile(here .. "/lib/options.lua")("char_gpt.lua", arg, {
  ["--steps"] = {"integer", 2000}, ["--eval-every"] = {"integer", 200},
  ["--eval-iters"] = {"integer", 20}, ["--sample"] = {"integer", 500},
  ["--seed"] = {"integer", 1337}, ["--threads"] = {"integer"},
  ["--checkpoint"] = {"flag"}, ["--bf16"] = {"flag"}})
if opt["--threads"] then ember.set_num_threads(opt["--threads"]) end
local max_iters, eval_interval = opt["--steps"], opt["--eval-every"]
local batch_size, block_size, eval_iters = 12, 64, opt["--eval-iters"]
local learning_rate, min_lr = 1e-3, 1e-4
local warmup_iters, lr_decay_iters = math.min(100, max_iters // 10), max_iters

local tok, train_data, val_data = fortunes.load()
print(("%d characters, vocabulary of %d, %d threads"):format(
  train_data:size(1) + val_data:size(1), tok.vocab_size, ember.get_num_threads()))

ember.manual_seed(opt["--seed"])
local function get_batch(split)
  return ember.data.windows(split == "train" and train_data or val_data, block_size, batch_size)
end

local model = char_gpt.GPT(char_gpt.GPTConfig{block_size = block_size, vocab_size = tok.vocab_size,
  n_layer = 4, n_head = 4, n_embd = 128, dropout = 0.0, bias = false})
print(("number of parameters: %.2fM"):format(model:get_num_params() / 1e6))
if opt["--checkpoint"] then model.checkpoint_blocks = true end
local optimizer = model:configure_optimizers(0.1, learning_rate, {0.9, 0.99})

--- nanoGPT's get_lr: linear warm-up, then a cosine down to min_lr.
local function get_lr(it)
  if it < warmup_iters then return learning_rate * (it + 1) / (warmup_iters + 1) end
  if it > lr_decay_iters then return min_lr end
  local ratio = (it - warmup_iters) / math.max(1, lr_decay_iters - warmup_iters)
  return min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)
end

--- model(x, y), under autocast with --bf16
local function forward(x, y)
  if opt["--bf16"] then return ember.autocast("bf16", model, x, y) end
  return model(x, y)
end

local function estimate_loss()
  model:eval()
  local out = {}
  ember.no_grad(function()
    for _, split in ipairs{"train", "val"} do
      local total = 0
      for _ = 1, eval_iters do
        local _, loss = forward(get_batch(split))
        total = total + loss:item()
      end
      out[split] = total / eval_iters
    end
  end)
  model:train()
  return out
end

local t0 = ember.clock()
for iter = 0, max_iters do
  if iter % eval_interval == 0 or iter == max_iters then
    local losses = estimate_loss()
    print(("step %d: train loss %.4f, val loss %.4f (%.1f s)"):format(
      iter, losses.train, losses.val, ember.clock() - t0))
  end
  if iter == max_iters then break end
  for _, group in ipairs(optimizer.param_groups) do group.lr = get_lr(iter) end
  local x, y = get_batch("train")
  local _, loss = forward(x, y)
  optimizer:zero_grad()
  loss:backward()
  ember.nn.utils.clip_grad_norm_(model:parameters(), 1.0)
  optimizer:step()
end
print(("trained %d steps in %.1f s"):format(max_iters, ember.clock() - t0))

-- sample.py: a fresh generator, so that sampling leaves the training stream alone
model:eval()
local n = opt["--sample"]
if n == 0 then return end
local g = ember.Generator(opt["--seed"])
t0 = ember.clock()
local y = model:generate(tok:encode("\n"):view(1, 1), n, 0.8, 10, g)
local secs = ember.clock() - t0
print(("--- %d characters sampled in %.2f s (key/value cache) ---"):format(n, secs))
print(tok:decode(y[1][{ {2, -1} }]))
print("--- end of sample ---")
