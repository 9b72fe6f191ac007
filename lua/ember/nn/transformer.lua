--- MultiheadAttention and the Transformer layers: TransformerEncoderLayer,
-- TransformerEncoder, TransformerDecoderLayer, TransformerDecoder.
--
-- Batch first: sequences are (B, L, E) in and out (or unbatched (L, E)),
-- where PyTorch's default is batch_first=False; batch_first = false is
-- refused rather than silently transposed.  Parameter and submodule names
-- are PyTorch's (in_proj_weight, out_proj.weight, self_attn.in_proj_bias,
-- linear1.weight, norm1.weight, ...), except that the stacked layers of
-- TransformerEncoder/Decoder are numbered from 1 (layers.1 is PyTorch's
-- layers.0), so a PyTorch state dict loads after that renaming.
--
-- Masks follow PyTorch's MultiheadAttention, which is the opposite of
-- scaled_dot_product_attention's for bool masks: true marks a key that may
-- NOT be attended (a padding position, a future token); a float mask is
-- added to the scores.  Without weights to return (need_weights = false,
-- the default here) attention runs in F.scaled_dot_product_attention's
-- fused kernel; with them, as an explicit softmax.
--
-- Everything is composed of differentiable ember ops: autograd and every
-- device come from those.
local ember = require "ember"
local common = require "ember.nn.common"
local Module = require "ember.nn.module"
local F = require "ember.nn.functional"
local init = require "ember.nn.initializers"
local Linear = require("ember.nn.linear").Linear
local LayerNorm = require("ember.nn.normalization").LayerNorm
local Dropout = require("ember.nn.dropout").Dropout
local ModuleList = require("ember.nn.containers").ModuleList

local M = {}

-- {======================================================================
-- Masks
-- =======================================================================

--- "[2,3]" of a shape list.
local function shape_list_str(s) return "[" .. table.concat(s, ",") .. "]" end

--- Check that t has exactly one of the shapes in `shapes` (lists of sizes),
-- is bool or of the query's dtype and on its device; `what` names it in
-- the messages.
local function check_mask(fname, t, what, shapes, q, level)
  level = level + 1
  common.check_tensor(fname, t, what, level)
  if t.dtype ~= "bool" and t.dtype ~= q.dtype then
    error(("%s: expected %s of dtype bool or %s (the query's), got %s"):format(fname, what,
          q.dtype, t.dtype), level)
  end
  if t.device ~= q.device then
    error(("%s: expected %s on %s (the query's device), got %s"):format(fname, what, q.device,
          t.device), level)
  end
  local got = t:shape()
  for _, s in ipairs(shapes) do
    if shape_list_str(s) == shape_list_str(got) then return t end
  end
  local want = {}
  for i, s in ipairs(shapes) do want[i] = shape_list_str(s) end
  error(("%s: expected %s of shape %s, got %s"):format(fname, what,
        table.concat(want, " or "), common.shape_str(t)), level)
end

--- A bool mask (true: may attend) as an additive one of dtype dt: 0 where
-- allowed, -inf elsewhere.
local function additive(allowed, dt)
  return ember.zeros(allowed:shape(), {dtype = dt, device = allowed.device})
               :masked_fill(allowed:logical_not(), -math.huge)
end

--- Combine two masks in SDPA's convention (bool: true may attend; float:
-- added), either possibly nil; the result broadcasts to (B, h, L, S).
local function combine(a, b, dt)
  if a == nil or b == nil then return a or b end
  if a.dtype == "bool" and b.dtype == "bool" then return a:logical_and(b) end
  if a.dtype == "bool" then a = additive(a, dt) end
  if b.dtype == "bool" then b = additive(b, dt) end
  return a + b
end

--- The causal mask in SDPA's convention (query i sees keys 1..i).
local function causal_mask(L, S, device)
  return ember.tril(ember.ones(L, S, {dtype = "bool", device = device}))
end

-- }======================================================================

-- {======================================================================
-- MultiheadAttention
-- =======================================================================

local MultiheadAttention = Module:extend("MultiheadAttention")
M.MultiheadAttention = MultiheadAttention

local MHA_OPTS = {dropout = true, bias = true, kdim = true, vdim = true, batch_first = true,
                  dtype = true}

--- nn.MultiheadAttention(embed_dim, num_heads [, {dropout = 0, bias = true,
-- kdim = embed_dim, vdim = embed_dim, dtype}]).
function MultiheadAttention:init(embed_dim, num_heads, opts)
  local fn = "MultiheadAttention"
  embed_dim = common.check_int(fn, embed_dim, "embed_dim", 1, 3)
  num_heads = common.check_int(fn, num_heads, "num_heads", 1, 3)
  opts = common.options(fn, opts, MHA_OPTS, 3)
  if embed_dim % num_heads ~= 0 then
    error(("%s: embed_dim (%d) must be divisible by num_heads (%d)"):format(fn, embed_dim,
          num_heads), 3)
  end
  if opts.batch_first == false then
    error(fn .. ": only batch_first = true is supported (inputs are (B, L, E))", 3)
  end
  self.embed_dim, self.num_heads = embed_dim, num_heads
  self.head_dim = embed_dim // num_heads
  self.kdim = common.check_int(fn, common.opt(opts, "kdim", embed_dim), "kdim", 1, 3)
  self.vdim = common.check_int(fn, common.opt(opts, "vdim", embed_dim), "vdim", 1, 3)
  self.dropout = common.check_number(fn, common.opt(opts, "dropout", 0), "dropout", 0, 1, 3)
  self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
  local bias = common.opt(opts, "bias", true) and true or false
  local dt = {dtype = opts.dtype or "float32"}
  -- PyTorch's registration order (state_dict order)
  if self._qkv_same_embed_dim then
    self:register_parameter("in_proj_weight", ember.empty(3 * embed_dim, embed_dim, dt))
  else
    self:register_parameter("q_proj_weight", ember.empty(embed_dim, embed_dim, dt))
    self:register_parameter("k_proj_weight", ember.empty(embed_dim, self.kdim, dt))
    self:register_parameter("v_proj_weight", ember.empty(embed_dim, self.vdim, dt))
  end
  if bias then self:register_parameter("in_proj_bias", ember.empty(3 * embed_dim, dt)) end
  self:add_module("out_proj", Linear(embed_dim, embed_dim, {bias = bias, dtype = dt.dtype}))
  self:reset_parameters()
end

--- PyTorch's _reset_parameters: xavier_uniform_ on the input projections,
-- zeros on the biases; out_proj.weight keeps Linear's initialisation.
function MultiheadAttention:reset_parameters()
  if self._qkv_same_embed_dim then
    init.xavier_uniform_(self.in_proj_weight)
  else
    init.xavier_uniform_(self.q_proj_weight)
    init.xavier_uniform_(self.k_proj_weight)
    init.xavier_uniform_(self.v_proj_weight)
  end
  if self.in_proj_bias ~= nil then
    init.zeros_(self.in_proj_bias)
    init.zeros_(self.out_proj.bias)
  end
end

--- Rows first..first+E-1 of the packed bias (nil without bias).
local function bias_part(b, k, E)
  return b and b:narrow(1, (k - 1) * E + 1, E)
end

--- The projected q, k, v (B, *, E).  Self-attention (same: q, k and v
-- are one tensor) with the packed weight is one GEMM.
function MultiheadAttention:_project(q, k, v, same)
  local E, b = self.embed_dim, self.in_proj_bias
  if self._qkv_same_embed_dim then
    local w = self.in_proj_weight
    if same then
      local qkv = F.linear(q, w, b)
      return qkv:narrow(-1, 1, E), qkv:narrow(-1, E + 1, E), qkv:narrow(-1, 2 * E + 1, E)
    end
    return F.linear(q, w:narrow(1, 1, E), bias_part(b, 1, E)),
           F.linear(k, w:narrow(1, E + 1, E), bias_part(b, 2, E)),
           F.linear(v, w:narrow(1, 2 * E + 1, E), bias_part(b, 3, E))
  end
  return F.linear(q, self.q_proj_weight, bias_part(b, 1, E)),
         F.linear(k, self.k_proj_weight, bias_part(b, 2, E)),
         F.linear(v, self.v_proj_weight, bias_part(b, 3, E))
end

--- Check one of q, k, v: the weights' dtype, `dim` dims (3, or 2
-- unbatched) with the last one `size`.
local function check_seq(fname, t, what, dim, size, dtype, level)
  level = level + 1
  common.check_input(fname, t, dtype, what, level)
  if t:dim() ~= dim or t:size(-1) ~= size then
    error(("%s: expected %s of shape %s, got %s"):format(fname, what,
          dim == 3 and ("(B, L, %d)"):format(size) or ("(L, %d) (unbatched, as the query)")
          :format(size), common.shape_str(t)), level)
  end
end

local CALL_OPTS = {key_padding_mask = true, attn_mask = true, is_causal = true,
                   need_weights = true, average_attn_weights = true}

-- The option names as MultiheadAttention takes them; the layers pass their
-- own names (src_mask, ...) so that the messages say what the caller wrote.
local MHA_NAMES = {attn_mask = "attn_mask", key_padding_mask = "key_padding_mask",
                   is_causal = "is_causal"}

--- The attention of q (B, L, E) over k, v (B, S, kdim / vdim), checked and
-- named as `fname` with the option names in `names`; level blames the
-- caller of the caller.  Returns the output and the weights (or nil).
function MultiheadAttention:_attend(fname, q, k, v, opts, names, level)
  level = level + 1
  local E, h, d = self.embed_dim, self.num_heads, self.head_dim
  local dt = (self.in_proj_weight or self.q_proj_weight).dtype
  common.check_input(fname, q, dt, "the query", level)
  local batched = q:dim() == 3
  if q:dim() ~= 2 and not batched then
    error(("%s: expected a 3-d (batched) or 2-d (unbatched) query, got shape %s"):format(
          fname, common.shape_str(q)), level)
  end
  local qd = q:dim()
  check_seq(fname, q, "the query", qd, E, dt, level)
  check_seq(fname, k, "the key", qd, self.kdim, dt, level)
  check_seq(fname, v, "the value", qd, self.vdim, dt, level)
  local same = rawequal(q, k) and rawequal(k, v)    -- self-attention: one GEMM
  if not batched then q, k, v = q:unsqueeze(1), k:unsqueeze(1), v:unsqueeze(1) end
  local B, L, S = q:size(1), q:size(2), k:size(2)
  if k:size(1) ~= B or v:size(1) ~= B or v:size(2) ~= S then
    error(("%s: expected the key and value of shape (B, S, *) with B = %d as the query's, " ..
           "got %s and %s"):format(fname, B, common.shape_str(k), common.shape_str(v)), level)
  end
  local causal = opts.is_causal
  if causal ~= nil and type(causal) ~= "boolean" then
    error(("%s: %s must be a boolean, got %s"):format(fname, names.is_causal, type(causal)), level)
  end
  -- masks, as SDPA takes them (bool: true may attend), broadcasting to (B, h, L, S)
  local am, kpm = opts.attn_mask, opts.key_padding_mask
  if am ~= nil then
    check_mask(fname, am, names.attn_mask, batched and {{L, S}, {B * h, L, S}}
               or {{L, S}, {h, L, S}}, q, level)
    if am:dim() == 3 then am = am:reshape(B, h, L, S) end
    if am.dtype == "bool" then am = am:logical_not() end
  end
  if kpm ~= nil then
    check_mask(fname, kpm, names.key_padding_mask, {batched and {B, S} or {S}}, q, level)
    kpm = kpm:reshape(B, 1, 1, S)
    if kpm.dtype == "bool" then kpm = kpm:logical_not() end
  end
  -- is_causal alone applies the causal mask; beside an attn_mask it is, as
  -- in PyTorch, a hint that the mask is causal, and the mask is used
  local fused_causal = causal == true and am == nil and kpm == nil
  if causal == true and am == nil and kpm ~= nil then am = causal_mask(L, S, q.device) end
  local mask = combine(am, kpm, dt)
  local qp, kp, vp = self:_project(q, k, v, same)
  -- (B, L, E) -> (B, h, L, d)
  local function heads(x, n) return x:reshape(B, n, h, d):transpose(2, 3) end
  qp, kp, vp = heads(qp, L), heads(kp, S), heads(vp, S)
  local p = self.training and self.dropout or 0
  local need = opts.need_weights == true
  local out, weights
  if not need and p == 0 then
    out = F.scaled_dot_product_attention(qp, kp, vp, {attn_mask = mask,
                                                      is_causal = fused_causal})
  else
    if fused_causal then mask = causal_mask(L, S, q.device) end
    local scores = qp:matmul(kp:transpose(3, 4)) * (1 / math.sqrt(d))
    if mask ~= nil then
      scores = scores + (mask.dtype == "bool" and additive(mask, dt) or mask)
    end
    local attn = F.softmax(scores, -1)
    if p > 0 then attn = F.dropout(attn, p, true) end
    out = attn:matmul(vp)
    if need then
      weights = opts.average_attn_weights == false and attn or attn:mean(2)
      if not batched then weights = weights:squeeze(1) end
    end
  end
  out = self.out_proj(out:transpose(2, 3):reshape(B, L, E))
  if not batched then out = out:squeeze(1) end
  return out, weights
end

--- mha(query, key, value [, opts]) -> output [, weights].
function MultiheadAttention:forward(q, k, v, opts)
  opts = common.options("MultiheadAttention", opts, CALL_OPTS, 2)
  local aw = opts.average_attn_weights
  if aw ~= nil and type(aw) ~= "boolean" then
    error("MultiheadAttention: average_attn_weights must be a boolean, got " .. type(aw), 2)
  end
  if opts.need_weights ~= nil and type(opts.need_weights) ~= "boolean" then
    error("MultiheadAttention: need_weights must be a boolean, got " .. type(opts.need_weights), 2)
  end
  local out, w = self:_attend("MultiheadAttention", q, k, v, opts, MHA_NAMES, 2)
  if opts.need_weights then return out, w end
  return out
end

function MultiheadAttention:extra_repr()
  local s = ("embed_dim=%d, num_heads=%d"):format(self.embed_dim, self.num_heads)
  if not self._qkv_same_embed_dim then s = s .. (", kdim=%d, vdim=%d"):format(self.kdim, self.vdim) end
  if self.dropout ~= 0 then s = s .. (", dropout=%g"):format(self.dropout) end
  return s
end

-- }======================================================================

-- {======================================================================
-- Encoder and decoder layers
-- =======================================================================

local LAYER_OPTS = {dim_feedforward = true, dropout = true, activation = true,
                    norm_first = true, layer_norm_eps = true, bias = true, batch_first = true,
                    dtype = true}

local ACTIVATIONS = {relu = F.relu, gelu = F.gelu}

--- The parts the encoder and decoder layers share: the self-attention, the
-- feed-forward block and its dropouts, norm1 and norm2 (PyTorch's names).
-- n_norms norms, n_norms dropouts after the blocks.
local function build_layer(self, fname, d_model, nhead, opts, n_norms)
  d_model = common.check_int(fname, d_model, "d_model", 1, 4)
  nhead = common.check_int(fname, nhead, "nhead", 1, 4)
  opts = common.options(fname, opts, LAYER_OPTS, 4)
  if opts.batch_first == false then
    error(fname .. ": only batch_first = true is supported (inputs are (B, L, d_model))", 4)
  end
  if d_model % nhead ~= 0 then
    error(("%s: d_model (%d) must be divisible by nhead (%d)"):format(fname, d_model, nhead), 4)
  end
  local ff = common.check_int(fname, common.opt(opts, "dim_feedforward", 2048),
                              "dim_feedforward", 1, 4)
  local p = common.check_number(fname, common.opt(opts, "dropout", 0.1), "dropout", 0, 1, 4)
  local act = common.opt(opts, "activation", "relu")
  if not ACTIVATIONS[act] then
    error(("%s: activation must be 'relu' or 'gelu', got %s"):format(fname,
          type(act) == "string" and "'" .. act .. "'" or type(act)), 4)
  end
  local eps = common.check_number(fname, common.opt(opts, "layer_norm_eps", 1e-5),
                                  "layer_norm_eps", 0, nil, 4)
  local bias = common.opt(opts, "bias", true) and true or false
  local dt = opts.dtype or "float32"
  self.d_model, self.nhead, self.dim_feedforward = d_model, nhead, ff
  self.activation, self.norm_first = act, common.opt(opts, "norm_first", false) and true or false
  local mha = {dropout = p, bias = bias, dtype = dt}
  self:add_module("self_attn", MultiheadAttention(d_model, nhead, mha))
  if n_norms == 3 then
    self:add_module("multihead_attn", MultiheadAttention(d_model, nhead, mha))
  end
  self:add_module("linear1", Linear(d_model, ff, {bias = bias, dtype = dt}))
  self:add_module("dropout", Dropout(p))
  self:add_module("linear2", Linear(ff, d_model, {bias = bias, dtype = dt}))
  for i = 1, n_norms do
    self:add_module("norm" .. i, LayerNorm(d_model, {eps = eps, bias = bias, dtype = dt}))
  end
  for i = 1, n_norms do self:add_module("dropout" .. i, Dropout(p)) end
end

--- Check a layer's input x: of the weights' dtype, (B, L, d_model) or
-- (L, d_model) (checked before a norm_first LayerNorm sees it).
local function check_input(self, fname, x, what, level)
  level = level + 1
  common.check_input(fname, x, self.linear1.weight.dtype, what, level)
  if (x:dim() ~= 3 and x:dim() ~= 2) or x:size(-1) ~= self.d_model then
    error(("%s: expected %s of shape (B, L, %d) or (L, %d), got %s"):format(fname, what,
          self.d_model, self.d_model, common.shape_str(x)), level)
  end
end

--- The feed-forward block: dropout2(linear2(dropout(act(linear1(x))))),
-- the last dropout being dropout<i>.
local function ff_block(self, x, i)
  x = self.linear2(self.dropout(ACTIVATIONS[self.activation](self.linear1(x))))
  return self["dropout" .. i](x)
end

--- One attention block: dropout<i>(attn(x, mem, mem)).
local function attn_block(self, attn, i, fname, x, mem, opts, names, level)
  local out = attn:_attend(fname, x, mem, mem, opts, names, level + 1)
  return self["dropout" .. i](out)
end

--- x + block(norm(x)) (norm first) or norm(x + block(x)).
local function residual(self, x, norm, block)
  if self.norm_first then return x + block(norm(x)) end
  return norm(x + block(x))
end

local function layer_repr(self)
  local s = ("d_model=%d, nhead=%d, dim_feedforward=%d, activation='%s'"):format(self.d_model,
            self.nhead, self.dim_feedforward, self.activation)
  if self.norm_first then s = s .. ", norm_first=true" end
  return s
end

local TransformerEncoderLayer = Module:extend("TransformerEncoderLayer")
M.TransformerEncoderLayer = TransformerEncoderLayer

--- nn.TransformerEncoderLayer(d_model, nhead [, {dim_feedforward = 2048,
-- dropout = 0.1, activation = "relu", norm_first = false, layer_norm_eps =
-- 1e-5, bias = true, dtype}]).
function TransformerEncoderLayer:init(d_model, nhead, opts)
  build_layer(self, "TransformerEncoderLayer", d_model, nhead, opts, 2)
end

local ENC_CALL = {src_mask = true, src_key_padding_mask = true, is_causal = true}
local ENC_NAMES = {attn_mask = "src_mask", key_padding_mask = "src_key_padding_mask",
                   is_causal = "is_causal"}

--- The layer on src with checked options, errors named fname and blamed
-- at level (from the caller of this).
function TransformerEncoderLayer:_run(fname, src, opts, level)
  level = level + 1
  check_input(self, fname, src, "the input (src)", level)
  local sa = {attn_mask = opts.src_mask, key_padding_mask = opts.src_key_padding_mask,
              is_causal = opts.is_causal}
  local x = residual(self, src, self.norm1, function(y)
    local out = attn_block(self, self.self_attn, 1, fname, y, y, sa, ENC_NAMES, level + 2)
    return out
  end)
  return residual(self, x, self.norm2, function(y) return ff_block(self, y, 2) end)
end

--- layer(src [, {src_mask, src_key_padding_mask, is_causal}]) -> (B, L, d_model).
function TransformerEncoderLayer:forward(src, opts)
  opts = common.options("TransformerEncoderLayer", opts, ENC_CALL, 2)
  local out = self:_run("TransformerEncoderLayer", src, opts, 2)
  return out   -- not a tail call: the error levels count this frame
end

TransformerEncoderLayer.extra_repr = layer_repr

local TransformerDecoderLayer = Module:extend("TransformerDecoderLayer")
M.TransformerDecoderLayer = TransformerDecoderLayer

--- nn.TransformerDecoderLayer(d_model, nhead [, opts as the encoder layer's]).
function TransformerDecoderLayer:init(d_model, nhead, opts)
  build_layer(self, "TransformerDecoderLayer", d_model, nhead, opts, 3)
end

local DEC_CALL = {tgt_mask = true, memory_mask = true, tgt_key_padding_mask = true,
                  memory_key_padding_mask = true, tgt_is_causal = true, memory_is_causal = true}
local DEC_SELF = {attn_mask = "tgt_mask", key_padding_mask = "tgt_key_padding_mask",
                  is_causal = "tgt_is_causal"}
local DEC_CROSS = {attn_mask = "memory_mask", key_padding_mask = "memory_key_padding_mask",
                   is_causal = "memory_is_causal"}

function TransformerDecoderLayer:_run(fname, tgt, memory, opts, level)
  level = level + 1
  check_input(self, fname, tgt, "the target (tgt)", level)
  check_input(self, fname, memory, "the memory", level)
  if memory:dim() ~= tgt:dim() then
    error(("%s: expected the memory to have %d dims as the target, got shape %s"):format(
          fname, tgt:dim(), common.shape_str(memory)), level)
  end
  local sa = {attn_mask = opts.tgt_mask, key_padding_mask = opts.tgt_key_padding_mask,
              is_causal = opts.tgt_is_causal}
  local ca = {attn_mask = opts.memory_mask, key_padding_mask = opts.memory_key_padding_mask,
              is_causal = opts.memory_is_causal}
  local x = residual(self, tgt, self.norm1, function(y)
    local out = attn_block(self, self.self_attn, 1, fname, y, y, sa, DEC_SELF, level + 2)
    return out
  end)
  x = residual(self, x, self.norm2, function(y)
    local out = attn_block(self, self.multihead_attn, 2, fname, y, memory, ca, DEC_CROSS,
                           level + 2)
    return out
  end)
  return residual(self, x, self.norm3, function(y) return ff_block(self, y, 3) end)
end

--- dec(tgt, memory [, {tgt_mask, memory_mask, tgt_key_padding_mask,
-- memory_key_padding_mask, tgt_is_causal, memory_is_causal}]).
function TransformerDecoderLayer:forward(tgt, memory, opts)
  opts = common.options("TransformerDecoderLayer", opts, DEC_CALL, 2)
  local out = self:_run("TransformerDecoderLayer", tgt, memory, opts, 2)
  return out   -- not a tail call: the error levels count this frame
end

TransformerDecoderLayer.extra_repr = layer_repr

-- }======================================================================

-- {======================================================================
-- Stacks
-- =======================================================================

--- A deep copy of module m (weights, dtype, device, mode), as PyTorch's
-- copy.deepcopy: rebuilt from its config, then its state loaded.
local function deep_copy(m)
  local c = require("ember.nn.serialize").from_config(m:get_config())
  local p = m:parameters()[1]
  if p then c:to(p.dtype); c:to(p.device) end
  c:load_state_dict(m:state_dict())
  c:train(m.training)
  return c
end

--- Build a stack of n copies of layer (class cls) with an optional final norm.
local function build_stack(self, fname, cls, layer, n, opts)
  if not Module.is_module(layer) or not layer:is_a(cls) then
    error(("%s: expected a %s, got %s"):format(fname, cls.__name,
          Module.is_module(layer) and "a " .. layer.__name or type(layer)), 4)
  end
  n = common.check_int(fname, n, "num_layers", 1, 4)
  opts = common.options(fname, opts, {norm = true}, 4)
  if opts.norm ~= nil and not Module.is_module(opts.norm) then
    error(("%s: norm must be a module, got %s"):format(fname, type(opts.norm)), 4)
  end
  local layers = {}
  for i = 1, n do layers[i] = deep_copy(layer) end
  self.num_layers = n
  self:add_module("layers", ModuleList(layers))
  if opts.norm ~= nil then self:add_module("norm", opts.norm) end
end

local TransformerEncoder = Module:extend("TransformerEncoder")
M.TransformerEncoder = TransformerEncoder

--- nn.TransformerEncoder(encoder_layer, num_layers [, {norm}]).
function TransformerEncoder:init(layer, n, opts)
  build_stack(self, "TransformerEncoder", TransformerEncoderLayer, layer, n, opts)
end

local STACK_ENC_CALL = {mask = true, src_key_padding_mask = true, is_causal = true}

--- enc(src [, {mask, src_key_padding_mask, is_causal}]).
function TransformerEncoder:forward(src, opts)
  opts = common.options("TransformerEncoder", opts, STACK_ENC_CALL, 2)
  local o = {src_mask = opts.mask, src_key_padding_mask = opts.src_key_padding_mask,
             is_causal = opts.is_causal}
  local x = src
  for _, layer in ipairs(self.layers:children()) do x = layer:_run("TransformerEncoder", x, o, 2) end
  if self.norm ~= nil then x = self.norm(x) end
  return x
end

local TransformerDecoder = Module:extend("TransformerDecoder")
M.TransformerDecoder = TransformerDecoder

--- nn.TransformerDecoder(decoder_layer, num_layers [, {norm}]).
function TransformerDecoder:init(layer, n, opts)
  build_stack(self, "TransformerDecoder", TransformerDecoderLayer, layer, n, opts)
end

--- dec(tgt, memory [, the decoder layer's options]).
function TransformerDecoder:forward(tgt, memory, opts)
  opts = common.options("TransformerDecoder", opts, DEC_CALL, 2)
  local x = tgt
  for _, layer in ipairs(self.layers:children()) do
    x = layer:_run("TransformerDecoder", x, memory, opts, 2)
  end
  if self.norm ~= nil then x = self.norm(x) end
  return x
end

-- }======================================================================

return M
