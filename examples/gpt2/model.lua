-- examples/gpt2/model.lua: GPT-2 as Hugging Face's transformers lays it out
-- (GPT2LMHeadModel), for inference from a checkpoint directory:
--   config.json        vocab_size, n_positions, n_embd, n_layer, n_head,
--                      layer_norm_epsilon, activation_function
--   model.safetensors  transformer.wte / wpe / h.N.{ln_1, attn.c_attn,
--                      attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj} / ln_f
--                      (OpenAI's own upload drops the "transformer."
--                      prefix; both load)
--
-- The modules carry Hugging Face's names, so the state dict is the file's
-- once nn.utils.from_pytorch has made the block numbers 1-based.  Its
-- projections are HF's Conv1D: the weight is stored input-major, [in,
-- out], and used as it is (y = x @ W + b), so nothing is transposed on
-- load and to_pytorch gives the file's tensors back.  The output layer is
-- the token embedding (tied, as in every GPT-2): logits = x @ wte^T, so
-- the model has no lm_head of its own and a file's lm_head.weight (a copy
-- of wte) is skipped.  The attn.bias / attn.masked_bias buffers older
-- files carry (the causal mask) are skipped too: the attention kernel
-- masks by itself.
--
-- forward takes an optional key/value cache (M.cache()), as
-- examples/char_gpt/model.lua: each block keeps the keys and values of the
-- positions seen so far, so generating feeds one token a step.
local ember = require "ember"
local json = require "ember.json"
local nn = ember.nn
local F = nn.functional

local M = {}

-- Hugging Face's names for GELU: "gelu_new" (GPT-2's) and
-- "gelu_pytorch_tanh" are the tanh approximation, "gelu" the exact one.
local GELU = {gelu_new = "tanh", gelu_pytorch_tanh = "tanh", gelu = "none"}

--- The model's settings from a config.json table (Hugging Face's field
-- names, its defaults for GPT-2 where a field is absent).
function M.config(c)
  local function int(name, default)
    local v = c[name]
    if v == nil then v = default end
    if math.type(v) ~= "integer" or v < 1 then
      error(("gpt2: config.json: %s must be a positive integer, got %s"):format(name, tostring(v)), 3)
    end
    return v
  end
  local cfg = {vocab_size = int("vocab_size", 50257), n_positions = int("n_positions", 1024),
               n_embd = int("n_embd", 768), n_layer = int("n_layer", 12), n_head = int("n_head", 12),
               eps = c.layer_norm_epsilon or 1e-5}
  local act = c.activation_function or "gelu_new"
  cfg.gelu = GELU[act]
  if not cfg.gelu then
    error(("gpt2: config.json: activation_function '%s' is not supported (gelu_new, " ..
           "gelu_pytorch_tanh, gelu)"):format(tostring(act)), 2)
  end
  if cfg.n_embd % cfg.n_head ~= 0 then
    error(("gpt2: config.json: n_embd (%d) is not a multiple of n_head (%d)")
          :format(cfg.n_embd, cfg.n_head), 2)
  end
  if c.tie_word_embeddings == false then
    error("gpt2: config.json: tie_word_embeddings is false; this model ties lm_head to wte", 2)
  end
  return cfg
end

--- Hugging Face's Conv1D: a linear layer whose weight is [in, out].
local Conv1D = nn.Module:extend("Conv1D")
function Conv1D:init(nx, nf)
  self.weight = ember.zeros(nx, nf, {requires_grad = true})
  self.bias = ember.zeros(nf, {requires_grad = true})
end
function Conv1D:forward(x)
  return x:matmul(self.weight) + self.bias
end

local Attention = nn.Module:extend("GPT2Attention")
function Attention:init(cfg)
  self.c_attn = Conv1D(cfg.n_embd, 3 * cfg.n_embd)
  self.c_proj = Conv1D(cfg.n_embd, cfg.n_embd)
  self.n_head = cfg.n_head
end

--- x (B, T, C); with a cache slot, x's keys and values are appended to
-- those before them and the queries (one token then) attend to all.
function Attention:forward(x, slot)
  local B, T, C = table.unpack(x:shape())
  local nh = self.n_head
  local q, k, v = table.unpack(self.c_attn(x):split(C, 3))
  q = q:view(B, T, nh, C // nh):transpose(2, 3) -- (B, nh, T, hs)
  k = k:view(B, T, nh, C // nh):transpose(2, 3)
  v = v:view(B, T, nh, C // nh):transpose(2, 3)
  local causal = true
  if slot then
    if slot.k then
      k, v = ember.cat({slot.k, k}, 3), ember.cat({slot.v, v}, 3)
      causal = false
    end
    slot.k, slot.v = k, v
  end
  local y = F.scaled_dot_product_attention(q, k, v, {is_causal = causal})
  return self.c_proj(y:transpose(2, 3):contiguous():view(B, T, C))
end

local MLP = nn.Module:extend("GPT2MLP")
function MLP:init(cfg)
  self.c_fc = Conv1D(cfg.n_embd, 4 * cfg.n_embd)
  self.c_proj = Conv1D(4 * cfg.n_embd, cfg.n_embd)
  self.gelu = cfg.gelu
end
function MLP:forward(x)
  return self.c_proj(F.gelu(self.c_fc(x), self.gelu))
end

local Block = nn.Module:extend("GPT2Block")
function Block:init(cfg)
  self.ln_1 = nn.LayerNorm(cfg.n_embd, {eps = cfg.eps})
  self.attn = Attention(cfg)
  self.ln_2 = nn.LayerNorm(cfg.n_embd, {eps = cfg.eps})
  self.mlp = MLP(cfg)
end
function Block:forward(x, slot)
  x = x + self.attn(self.ln_1(x), slot)
  return x + self.mlp(self.ln_2(x))
end

local GPT2 = nn.Module:extend("GPT2")
M.GPT2 = GPT2

--- A GPT-2 of settings cfg (M.config), in eval mode; its weights are zeros
-- until loaded (M.load).
function GPT2:init(cfg)
  self.config = cfg
  local h = {}
  for i = 1, cfg.n_layer do h[i] = Block(cfg) end
  self.transformer = nn.ModuleDict{
    {"wte", nn.Embedding(cfg.vocab_size, cfg.n_embd)},
    {"wpe", nn.Embedding(cfg.n_positions, cfg.n_embd)},
    {"h", nn.ModuleList(h)},
    {"ln_f", nn.LayerNorm(cfg.n_embd, {eps = cfg.eps})},
  }
  self:eval()
end

--- An empty key/value cache for forward: one {k, v} slot a block, filled
-- by the first call (the prompt) and grown a position a call.
function M.cache()
  return {len = 0}
end

--- idx (B, T) int64 token ids (1-based) -> logits (B, T, vocab), or
-- (B, 1, vocab) for the last position only when last is true (what
-- generating needs: the output layer is the largest matmul).  With a
-- cache, idx holds the positions after the cached ones: the whole prompt
-- on the first call, then one token a call.
function GPT2:forward(idx, cache, last)
  local t = idx:size(2)
  local past = cache and cache.len or 0
  if past > 0 and t ~= 1 then
    error(("gpt2: a cached forward takes one token a call after the prompt, got %d"):format(t), 2)
  end
  if past + t > self.config.n_positions then
    error(("gpt2: %d positions, the model has %d"):format(past + t, self.config.n_positions), 2)
  end
  local tr = self.transformer
  local pos = ember.arange(past + 1, past + t + 1, {dtype = "int64", device = idx.device})
  local x = tr.wte(idx) + tr.wpe(pos)
  for i, block in ipairs(tr.h) do
    local slot
    if cache then
      cache[i] = cache[i] or {}
      slot = cache[i]
    end
    x = block(x, slot)
  end
  if cache then cache.len = past + t end
  if last then x = x[{ {}, {-1}, {} }] end
  return tr.ln_f(x):matmul(tr.wte.weight:t())
end

--- The name a Hugging Face GPT-2 tensor has in this model, after
-- nn.utils.from_pytorch (1-based block numbers), or nil for what it
-- skips: the causal-mask buffers and the tied lm_head.  A name without
-- the "transformer." prefix (OpenAI's upload, GPT2Model files) gets it.
function M.hf_name(name)
  if name:match("%.attn%.bias$") or name:match("%.attn%.masked_bias$") or name == "lm_head.weight" then
    return nil
  end
  return name:match("^transformer%.") and name or "transformer." .. name
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then error("gpt2: " .. err, 3) end
  local s = f:read("a")
  f:close()
  return s
end

--- The model in directory dir (config.json, model.safetensors), on the
-- CPU in float32 (whatever dtype the file holds), in eval mode.
function M.load(dir)
  local cfg = M.config(json.decode(read_file(dir .. "/config.json")))
  local model = GPT2(cfg)
  local sd = ember.load(dir .. "/model.safetensors")
  model:load_state_dict(nn.utils.from_pytorch(sd), {map = M.hf_name})
  return model
end

--- ids (T) or (B, T) int64 completed by max_new_tokens tokens, each drawn
-- by ember.sample_logits with opts (temperature, top_k, top_p,
-- generator; temperature 0 is greedy).  The prompt goes in once, then each
-- step feeds only the token drawn.  When the cache holds n_positions
-- positions it restarts from the last n_positions // 2 tokens, so the model
-- always sees between half a window and a window of context.  Returns the
-- whole sequence, of ids' shape.
function GPT2:generate(ids, max_new_tokens, opts)
  local flat = ids:dim() == 1
  if flat then ids = ids:view(1, -1) end
  local np = self.config.n_positions
  local out = ember.no_grad(function()
    local cache = M.cache()
    local logits = self(ids:size(2) <= np and ids or ids[{ {}, {-np, -1} }], cache, true)
    for step = 1, max_new_tokens do
      local nxt = ember.sample_logits(logits[{ {}, -1, {} }], opts)
      ids = ember.cat({ids, nxt}, 2)
      if step == max_new_tokens then break end
      if cache.len == np then
        cache = M.cache()
        logits = self(ids[{ {}, {-(np // 2), -1} }], cache, true)
      else
        logits = self(nxt, cache, true)
      end
    end
    return ids
  end)
  return flat and out:view(-1) or out
end

return M
