-- examples/char_gpt/model.lua: the GPT of examples/char_gpt.lua.  It is
-- nanoGPT's model (examples/nanogpt/model.lua, the line-by-line port,
-- reused as it is: same modules, parameter names, initialisation, weight
-- tying and optimiser groups) with two changes to how it runs:
--   - attention goes through the fused F.scaled_dot_product_attention,
--     nanoGPT's own "flash" path (PyTorch >= 2.0), so no (B, nh, T, T)
--     matrix is made;
--   - forward takes an optional key/value cache (M.cache()): each block
--     keeps the keys and values of the positions seen so far, so sampling
--     feeds one new token a step and a step costs O(T), not a forward of
--     the whole window.
-- spec/nn/char_gpt_spec.lua checks it against the port (same weights, same
-- logits and loss) and that a cached step gives the
-- logits of a full forward.
local ember = require "ember"
local F = ember.nn.functional

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "examples/char_gpt"
local nanogpt = dofile(here .. "/../nanogpt/model.lua")

local M = {GPTConfig = nanogpt.GPTConfig}

local GPT = nanogpt.GPT:extend("CharGPT")
M.GPT = GPT

--- An empty key/value cache for GPT:forward: one {k, v} slot a block,
-- filled by the first forward (the prompt) and grown a position a call.
function M.cache()
  return {len = 0}
end

--- One block's attention on x (B, T, C) through the fused kernel; with a
-- cache slot, x's keys and values are appended to the ones before them
-- and the queries attend to all of them.
local function attend(attn, x, slot, training)
  local B, T, C = table.unpack(x:shape())
  local nh = attn.n_head
  local q, k, v = table.unpack(attn.c_attn(x):split(C, 3))
  q = q:view(B, T, nh, C // nh):transpose(2, 3) -- (B, nh, T, hs)
  k = k:view(B, T, nh, C // nh):transpose(2, 3)
  v = v:view(B, T, nh, C // nh):transpose(2, 3)
  local causal = true
  if slot then
    if slot.k then
      -- T is 1 here (forward checks): the new query sees every key so far
      k, v = ember.cat({slot.k, k}, 3), ember.cat({slot.v, v}, 3)
      causal = false
    end
    slot.k, slot.v = k, v
  end
  local y = F.scaled_dot_product_attention(q, k, v, {is_causal = causal,
    dropout_p = training and attn.dropout or 0})
  y = y:transpose(2, 3):contiguous():view(B, T, C)
  return attn.resid_dropout(attn.c_proj(y))
end

--- One block on x: attention, then the MLP, each on a residual path.
local function run_block(block, x, slot, training)
  x = x + attend(block.attn, block.ln_1(x), slot, training)
  return x + block.mlp(block.ln_2(x))
end

--- idx (b, t) int64 token ids (1-based); targets (b, t) or nil; cache
-- (M.cache()) or nil.  With a cache, idx holds the positions after the
-- cached ones: the whole prompt on the first call, then one token a call.
function GPT:forward(idx, targets, cache)
  local t = idx:size(2)
  local past = cache and cache.len or 0
  if past > 0 and t ~= 1 then
    error(("GPT: a cached forward takes one token a call after the prompt, got %d"):format(t), 2)
  end
  assert(past + t <= self.config.block_size, ("Cannot forward sequence of length %d, block size is only %d")
    :format(past + t, self.config.block_size))
  local pos = ember.arange(past + 1, past + t + 1, {dtype = "int64"})
  local tr = self.transformer
  local x = tr.drop(tr.wte(idx) + tr.wpe(pos))
  for i, block in ipairs(tr.h) do
    local slot
    if cache then
      cache[i] = cache[i] or {}
      slot = cache[i]
    end
    if self.checkpoint_blocks and not cache then
      -- activation checkpointing (model.checkpoint_blocks = true): the
      -- block's activations are recomputed in backward, not kept
      x = ember.checkpoint(run_block, block, x, nil, self.training)
    else
      x = run_block(block, x, slot, self.training)
    end
  end
  if cache then cache.len = past + t end
  x = tr.ln_f(x)
  if targets then
    local logits = self.lm_head(x)
    return logits, F.cross_entropy(logits:view(-1, logits:size(-1)), targets:view(-1),
                                   {ignore_index = -1})
  end
  return self.lm_head(x[{ {}, {-1}, {} }])   -- the last position only, as nanoGPT
end

--- The next token of each row, drawn from logits (b, vocab) as nanoGPT's
-- generate draws it: scaled by 1/temperature, all but the top_k set to
-- -inf, softmax, one multinomial draw; (b, 1) int64.
local function draw(logits, temperature, top_k, generator)
  logits = logits / temperature
  if top_k then
    local v = ember.topk(logits, math.min(top_k, logits:size(-1)))
    logits[logits:lt(v[{ {}, {-1} }])] = -math.huge
  end
  return ember.multinomial(F.softmax(logits, -1), 1, {generator = generator})
end

--- nanoGPT's generate with the cache: idx (b, t) int64 is completed
-- max_new_tokens times.  The prompt's last block_size tokens go in once;
-- then each step feeds only the token just drawn.  When the cache holds
-- block_size positions (the position table ends there), it restarts from
-- the last block_size // 2 tokens, so the model always sees between half
-- a block and a block of context (nanoGPT slides a full block, paying a
-- full forward a token).  Run it in eval mode.
function GPT:generate(idx, max_new_tokens, temperature, top_k, generator)
  temperature = temperature or 1.0
  local bs = self.config.block_size
  return ember.no_grad(function()
    local cache = M.cache()
    local logits = self(idx:size(2) <= bs and idx or idx[{ {}, {-bs, -1} }], nil, cache)
    for step = 1, max_new_tokens do
      local idx_next = draw(logits[{ {}, -1, {} }], temperature, top_k, generator)
      idx = ember.cat({idx, idx_next}, 2)
      if step == max_new_tokens then break end
      if cache.len == bs then
        cache = M.cache()
        logits = self(idx[{ {}, {-(bs // 2), -1} }], nil, cache)
      else
        logits = self(idx_next, nil, cache)
      end
    end
    return idx
  end)
end

return M
