-- examples/nanogpt/model.lua: nanoGPT's model.py (Andrej Karpathy's GPT-2 in
-- one file) ported to Ember line by line.  Each PyTorch line sits in a
-- comment where the spelling differs; the differences are the ones the
-- docs list: dims and token ids are 1-based, `x[:, :T]` is `x[{ {}, {1, T} }]`,
-- `a @ b` is `a:matmul(b)`, options go in a trailing table.
--
-- Checked number for number against PyTorch (forward, loss, every gradient,
-- greedy generation, crop_block_size) by spec/nn/nanogpt_port_spec.lua;
-- examples/nanogpt.lua trains it on a few fortunes and samples from it.
--
-- As in nanoGPT the trunk is an nn.ModuleDict and its blocks an
-- nn.ModuleList, so the parameter names are PyTorch's
-- (transformer.h.1.attn.c_attn.weight, with Ember's 1-based block numbers:
-- PyTorch's transformer.h.0).
local ember = require "ember"
local nn = ember.nn
local F = nn.functional

local M = {}

--- GPTConfig: nanoGPT's defaults (GPT-2 124M); override any field.
function M.GPTConfig(t)
  local c = {block_size = 1024, vocab_size = 50304, n_layer = 12, n_head = 12,
             n_embd = 768, dropout = 0.0, bias = true}
  for k, v in pairs(t or {}) do
    if c[k] == nil then error("GPTConfig: unknown field '" .. tostring(k) .. "'", 2) end
    c[k] = v
  end
  return c
end

local LayerNorm = nn.Module:extend("NanoLayerNorm")
-- LayerNorm but with an optional bias (PyTorch's took no bias=False then)
function LayerNorm:init(ndim, bias)
  self.weight = ember.ones(ndim, {requires_grad = true})
  self.bias = bias and ember.zeros(ndim, {requires_grad = true}) or nil
end
function LayerNorm:forward(input)
  -- F.layer_norm(input, self.weight.shape, self.weight, self.bias, 1e-5)
  return F.layer_norm(input, self.weight:shape(), self.weight, self.bias, 1e-5)
end

local CausalSelfAttention = nn.Module:extend("CausalSelfAttention")
function CausalSelfAttention:init(config)
  assert(config.n_embd % config.n_head == 0)
  -- key, query, value projections for all heads, but in a batch
  self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, {bias = config.bias})
  -- output projection
  self.c_proj = nn.Linear(config.n_embd, config.n_embd, {bias = config.bias})
  -- regularization
  self.attn_dropout = nn.Dropout(config.dropout)
  self.resid_dropout = nn.Dropout(config.dropout)
  self.n_head = config.n_head
  self.n_embd = config.n_embd
  self.dropout = config.dropout
  -- causal mask to ensure that attention is only applied to the left in the input sequence
  -- torch.tril(torch.ones(bs, bs)).view(1, 1, bs, bs)
  local bs = config.block_size
  self:register_buffer("bias", ember.tril(ember.ones(bs, bs)):view(1, 1, bs, bs))
end

function CausalSelfAttention:forward(x)
  -- batch size, sequence length, embedding dimensionality (n_embd)
  local B, T, C = table.unpack(x:shape())
  -- calculate query, key, values for all heads in batch and move head forward to be the batch dim
  -- q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
  local q, k, v = table.unpack(self.c_attn(x):split(self.n_embd, 3))
  k = k:view(B, T, self.n_head, C // self.n_head):transpose(2, 3) -- (B, nh, T, hs)
  q = q:view(B, T, self.n_head, C // self.n_head):transpose(2, 3) -- (B, nh, T, hs)
  v = v:view(B, T, self.n_head, C // self.n_head):transpose(2, 3) -- (B, nh, T, hs)
  -- manual implementation of attention
  -- att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
  local att = q:matmul(k:transpose(-2, -1)) * (1.0 / math.sqrt(k:size(-1)))
  -- att = att.masked_fill(self.bias[:,:,:T,:T] == 0, float('-inf'))
  att = att:masked_fill(self.bias[{ {}, {}, {1, T}, {1, T} }]:eq(0), -math.huge)
  att = F.softmax(att, -1)
  att = self.attn_dropout(att)
  local y = att:matmul(v) -- (B, nh, T, T) x (B, nh, T, hs) -> (B, nh, T, hs)
  -- re-assemble all head outputs side by side
  y = y:transpose(2, 3):contiguous():view(B, T, C)
  -- output projection
  return self.resid_dropout(self.c_proj(y))
end

local MLP = nn.Module:extend("MLP")
function MLP:init(config)
  self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, {bias = config.bias})
  self.gelu = nn.GELU()
  self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, {bias = config.bias})
  self.dropout = nn.Dropout(config.dropout)
end
function MLP:forward(x)
  return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))
end

local Block = nn.Module:extend("Block")
function Block:init(config)
  self.ln_1 = LayerNorm(config.n_embd, config.bias)
  self.attn = CausalSelfAttention(config)
  self.ln_2 = LayerNorm(config.n_embd, config.bias)
  self.mlp = MLP(config)
end
function Block:forward(x)
  x = x + self.attn(self.ln_1(x))
  x = x + self.mlp(self.ln_2(x))
  return x
end

local GPT = nn.Module:extend("GPT")
M.GPT = GPT

function GPT:init(config)
  assert(config.vocab_size ~= nil)
  assert(config.block_size ~= nil)
  self.config = config
  -- nn.ModuleDict(dict(wte=..., wpe=..., drop=..., h=..., ln_f=...)): pairs keep the order
  local h = {}                 -- [Block(config) for _ in range(config.n_layer)]
  for i = 1, config.n_layer do h[i] = Block(config) end
  self.transformer = nn.ModuleDict{
    {"wte", nn.Embedding(config.vocab_size, config.n_embd)},
    {"wpe", nn.Embedding(config.block_size, config.n_embd)},
    {"drop", nn.Dropout(config.dropout)},
    {"h", nn.ModuleList(h)},
    {"ln_f", LayerNorm(config.n_embd, config.bias)},
  }
  self.lm_head = nn.Linear(config.n_embd, config.vocab_size, {bias = false})
  -- with weight tying when using torch.compile() some warnings get generated ...
  self.transformer.wte.weight = self.lm_head.weight -- https://paperswithcode.com/method/weight-tying
  -- init all weights
  self:apply(function(m) self:_init_weights(m) end)
  -- apply special scaled init to the residual projections, per GPT-2 paper
  for pn, p in self:named_parameters() do
    if pn:match("c_proj%.weight$") then   -- pn.endswith('c_proj.weight')
      nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * config.n_layer))
    end
  end
end

--- The number of parameters; for non-embedding count (default), the
-- position embeddings get subtracted (the token embeddings are tied to the
-- final layer's weights, so they count).
function GPT:get_num_params(non_embedding)
  local n_params = 0
  for _, p in ipairs(self:parameters()) do n_params = n_params + p:numel() end
  if non_embedding ~= false then
    n_params = n_params - self.transformer.wpe.weight:numel()
  end
  return n_params
end

function GPT:_init_weights(module)
  if module:is_a(nn.Linear) then                -- isinstance(module, nn.Linear)
    nn.init.normal_(module.weight, 0.0, 0.02)
    if module.bias then nn.init.zeros_(module.bias) end
  elseif module:is_a(nn.Embedding) then
    nn.init.normal_(module.weight, 0.0, 0.02)
  end
end

--- idx (b, t) int64 token ids (1-based); targets (b, t) or nil.
function GPT:forward(idx, targets)
  local b, t = table.unpack(idx:shape())
  assert(t <= self.config.block_size, ("Cannot forward sequence of length %d, block size is only %d")
    :format(t, self.config.block_size))
  local pos = ember.arange(1, t + 1, {dtype = "int64"}) -- shape (t)
  -- forward the GPT model itself
  local tok_emb = self.transformer.wte(idx) -- token embeddings of shape (b, t, n_embd)
  local pos_emb = self.transformer.wpe(pos) -- position embeddings of shape (t, n_embd)
  local x = self.transformer.drop(tok_emb + pos_emb)
  for _, block in ipairs(self.transformer.h) do
    -- Ember: model.checkpoint_blocks = true recomputes each block's
    -- activations in backward (torch.utils.checkpoint), to save memory
    if self.checkpoint_blocks then x = ember.checkpoint(block, x) else x = block(x) end
  end
  x = self.transformer.ln_f(x)
  local logits, loss
  if targets then
    -- if we are given some desired targets also calculate the loss
    logits = self.lm_head(x)
    loss = F.cross_entropy(logits:view(-1, logits:size(-1)), targets:view(-1), {ignore_index = -1})
  else
    -- inference-time mini-optimization: only forward the lm_head on the very last position
    logits = self.lm_head(x[{ {}, {-1}, {} }]) -- note: using list [-1] to preserve the time dim
  end
  return logits, loss
end

--- Model surgery to decrease the block size if necessary, e.g. to load a
-- pretrained GPT-2 (block size 1024) and use a smaller one.
function GPT:crop_block_size(block_size)
  assert(block_size <= self.config.block_size)
  self.config.block_size = block_size
  -- nn.Parameter(self.transformer.wpe.weight[:block_size])
  self.transformer.wpe.weight = self.transformer.wpe.weight[{ {1, block_size} }]
    :detach():clone():requires_grad_()
  for _, block in ipairs(self.transformer.h) do
    if block.attn.bias then
      block.attn:register_buffer("bias", block.attn.bias[{ {}, {}, {1, block_size}, {1, block_size} }])
    end
  end
end

--- AdamW with weight decay on every 2-D parameter (matmuls and
-- embeddings), none on biases and layer norms: nn.utils.weight_decay_groups.
function GPT:configure_optimizers(weight_decay, learning_rate, betas)
  local optim_groups, decay, no_decay = ember.nn.utils.weight_decay_groups(self, weight_decay)
  local function count(list)
    local n = 0
    for _, p in ipairs(list) do n = n + p:numel() end
    return n
  end
  local num_decay, num_nodecay = count(decay), count(no_decay)
  local optimizer = ember.optim.AdamW(optim_groups, {lr = learning_rate, betas = betas})
  return optimizer, num_decay, num_nodecay
end

--- Take a conditioning sequence of indices idx ((b, t) int64) and complete
-- the sequence max_new_tokens times, feeding the predictions back into the
-- model each time.  Run it in eval mode.
function GPT:generate(idx, max_new_tokens, temperature, top_k, generator)
  temperature = temperature or 1.0
  return ember.no_grad(function()
    for _ = 1, max_new_tokens do
      -- if the sequence context is growing too long we must crop it at block_size
      local bs = self.config.block_size
      local idx_cond = idx:size(2) <= bs and idx or idx[{ {}, {-bs, -1} }]
      -- forward the model to get the logits for the index in the sequence
      local logits = self(idx_cond)
      -- pluck the logits at the final step and scale by desired temperature
      logits = logits[{ {}, -1, {} }] / temperature
      -- optionally crop the logits to only the top k options
      if top_k then
        local v = ember.topk(logits, math.min(top_k, logits:size(-1)))
        logits[logits:lt(v[{ {}, {-1} }])] = -math.huge
      end
      -- apply softmax to convert logits to (normalized) probabilities
      local probs = F.softmax(logits, -1)
      -- sample from the distribution
      local idx_next = ember.multinomial(probs, 1, {generator = generator})
      -- append sampled index to the running sequence and continue
      idx = ember.cat({idx, idx_next}, 2)
    end
    return idx
  end)
end

return M
