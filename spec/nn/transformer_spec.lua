-- nn.MultiheadAttention and the Transformer layers against PyTorch reference
-- values (spec/reference/make_transformer_reference.py): output, attention
-- weights and the gradients of every input and parameter; then names,
-- initialisation, masks, stacks and bad input.
local ember = require "ember"
local nn = ember.nn
local H = require "nn.helper"
local T, close = H.T, H.close
local ref = require "reference.transformer_values"
local gradcheck = require "helpers.gradcheck"

--- A reference tensor: a mask keeps its dtype (bool), the rest is dt.
local function tensor_of(r, dt)
  if r.dtype == "bool" then
    return ember.tensor(r.data, {dtype = "bool"}):reshape(r.shape)
  end
  return T(r, dt)
end

--- The module of case c in dtype dt with the case's weights loaded
-- (strictly: the names and shapes are PyTorch's, layers 1-based).
local function build(c, dt)
  local opts = {dtype = dt}
  for k, v in pairs(c.opts) do opts[k] = v end
  local m
  if c.kind == "MultiheadAttention" then
    m = nn.MultiheadAttention(c.args[1], c.args[2], opts)
  elseif c.num_layers then
    local layer_class = c.kind == "TransformerEncoder" and nn.TransformerEncoderLayer
                        or nn.TransformerDecoderLayer
    local layer = layer_class(c.args[1], c.args[2], opts)
    m = nn[c.kind](layer, c.num_layers, {norm = nn.LayerNorm(c.args[1], {dtype = dt})})
  else
    m = nn[c.kind](c.args[1], c.args[2], opts)
  end
  local sd = {}
  for name, p in pairs(c.params) do sd[name] = T(p, dt) end
  m:load_state_dict(sd)
  return m
end

--- Run case c in dtype dt; check output, weights and gradients.
local function check_case(name, c, dt)
  local m = build(c, dt)
  local inputs = {}
  for k, r in pairs(c.inputs) do inputs[k] = H.leaf(r, dt) end
  local call = {}
  for k, v in pairs(c.call) do call[k] = type(v) == "table" and tensor_of(v, dt) or v end
  local out, w
  if c.kind == "MultiheadAttention" then
    local q, k, v = inputs.q, inputs.k, inputs.v
    if c.selfattn then q, k, v = inputs.x, inputs.x, inputs.x end
    out, w = m(q, k, v, call)
  elseif c.kind:match("^TransformerEncoder") then
    out = m(inputs.src, call)
  else
    out = m(inputs.tgt, inputs.memory, call)
  end
  close(out, c.out, name .. " output")
  local loss = (out * T(c.R, dt)):sum()
  if c.weights then
    close(w, c.weights, name .. " weights")
    loss = loss + (w * T(c.RW, dt)):sum()
  else
    assert.is_nil(w)
  end
  loss:backward()
  for k, g in pairs(c.ginputs) do close(inputs[k].grad, g, name .. " grad " .. k) end
  local params = {}
  for pname, p in m:named_parameters() do params[pname] = p end
  for pname, g in pairs(c.gparams) do
    close(params[pname].grad, g, name .. " grad " .. pname)
  end
end

local names = {}
for name in pairs(ref) do names[#names + 1] = name end
table.sort(names)

describe("transformer layers against PyTorch", function()
  for _, name in ipairs(names) do
    for _, dt in ipairs(H.DTYPES) do
      it(name .. " (" .. dt .. ")", function() check_case(name, ref[name], dt) end)
    end
  end
end)

describe("nn.MultiheadAttention", function()
  local f64 = {dtype = "float64"}

  it("names, shapes and initialises its parameters as PyTorch", function()
    local m = nn.MultiheadAttention(16, 4)
    local got = {}
    for name, p in m:named_parameters() do
      got[#got + 1] = name .. ":" .. table.concat(p:shape(), "x")
    end
    assert.are.same({"in_proj_weight:48x16", "in_proj_bias:48", "out_proj.weight:16x16",
                     "out_proj.bias:16"}, got)
    -- xavier_uniform_ on (48, 16): bound sqrt(6 / 64)
    local bound = math.sqrt(6 / 64)
    assert.is_true(m.in_proj_weight:abs():max():item() <= bound)
    assert.is_true(m.in_proj_weight:abs():max():item() > 0.8 * bound)
    assert.are.equal(0, m.in_proj_bias:abs():max():item())
    assert.are.equal(0, m.out_proj.bias:abs():max():item())
    local sep = nn.MultiheadAttention(6, 2, {kdim = 4, vdim = 5, bias = false})
    got = {}
    for name, p in sep:named_parameters() do
      got[#got + 1] = name .. ":" .. table.concat(p:shape(), "x")
    end
    assert.are.same({"q_proj_weight:6x6", "k_proj_weight:6x4", "v_proj_weight:6x5",
                     "out_proj.weight:6x6"}, got)
    assert.are.equal("MultiheadAttention(embed_dim=6, num_heads=2, kdim=4, vdim=5\n" ..
                     "  (out_proj): Linear(in_features=6, out_features=6, bias=false)\n)",
                     tostring(sep))
  end)

  it("gives the same result fused and with weights, for every mask", function()
    ember.manual_seed(3)
    local m = nn.MultiheadAttention(8, 2, f64)
    local x, kv = ember.randn(2, 4, 8, f64), ember.randn(2, 5, 8, f64)
    local kpm = ember.tensor({{false, false, false, true, true},
                              {false, false, false, false, false}}, {dtype = "bool"})
    local fmask = ember.randn(4, 5, f64)
    for _, opts in ipairs{{}, {key_padding_mask = kpm}, {attn_mask = fmask},
                          {attn_mask = fmask:gt(1), key_padding_mask = kpm:double() * -1e9},
                          {attn_mask = ember.randn(4, 4, 5, f64), key_padding_mask = kpm}} do
      local a = m(x, kv, kv, opts)
      opts.need_weights = true
      local b, w = m(x, kv, kv, opts)
      assert.is_true((a - b):abs():max():item() < 1e-12)
      assert.are.same({2, 4, 5}, w:shape())
      -- each row of the averaged weights sums to 1
      assert.is_true((w:sum(3) - 1):abs():max():item() < 1e-12)
    end
  end)

  it("treats a bool mask as PyTorch's MultiheadAttention: true is NOT attended", function()
    ember.manual_seed(4)
    local m = nn.MultiheadAttention(4, 1, f64)
    local x = ember.randn(1, 3, 4, f64)
    local kpm = ember.tensor({{false, true, false}}, {dtype = "bool"})
    local _, w = m(x, x, x, {key_padding_mask = kpm, need_weights = true})
    assert.are.equal(0, w[{{}, {}, {2}}]:abs():max():item())
    -- is_causal: query i sees keys 1..i only
    local _, wc = m(x, x, x, {is_causal = true, need_weights = true})
    assert.are.equal(0, ember.triu(wc:squeeze(1), 1):abs():max():item())
    -- is_causal beside a mask is a hint: the mask is used
    local full = ember.zeros(3, 3, {dtype = "bool"})
    local a = m(x, x, x, {attn_mask = full, is_causal = true})
    local b = m(x, x, x)
    assert.are.equal(0, (a - b):abs():max():item())
  end)

  it("returns weights per head and handles unbatched input", function()
    local m = nn.MultiheadAttention(6, 3)
    local q, k = ember.randn(2, 4, 6), ember.randn(2, 5, 6)
    local _, w = m(q, k, k, {need_weights = true, average_attn_weights = false})
    assert.are.same({2, 3, 4, 5}, w:shape())
    local o1, w1 = m(q[1], k[1], k[1], {need_weights = true})
    local o2, w2 = m(q, k, k, {need_weights = true})
    assert.is_true((o1 - o2[1]):abs():max():item() < 1e-6)
    assert.is_true((w1 - w2[1]):abs():max():item() < 1e-6)
  end)

  it("applies dropout to the weights in training only", function()
    local m = nn.MultiheadAttention(4, 2, {dropout = 0.9})
    local x = ember.randn(2, 6, 4)
    m:eval()
    local a, b = m(x, x, x), m(x, x, x)
    assert.are.equal(0, (a - b):abs():max():item())
    m:train()
    assert.is_true((m(x, x, x) - a):abs():max():item() > 0)
  end)

  it("handles a batch of 0 and non-contiguous inputs", function()
    local m = nn.MultiheadAttention(4, 2)
    assert.are.same({0, 3, 4}, m(ember.zeros(0, 3, 4), ember.zeros(0, 2, 4),
                                 ember.zeros(0, 2, 4)):shape())
    local x = ember.randn(5, 2, 4):transpose(1, 2)
    assert.is_true((m(x, x, x) - m(x:contiguous(), x:contiguous(), x:contiguous()))
                   :abs():max():item() < 1e-6)
  end)

  it("checks its arguments", function()
    H.fails("MultiheadAttention: embed_dim (6) must be divisible by num_heads (4)",
            nn.MultiheadAttention, 6, 4)
    H.fails("MultiheadAttention: unknown option 'add_bias_kv'", nn.MultiheadAttention, 4, 2,
            {add_bias_kv = true})
    H.fails("MultiheadAttention: only batch_first = true is supported", nn.MultiheadAttention,
            4, 2, {batch_first = false})
    local m = nn.MultiheadAttention(4, 2)
    local x = ember.zeros(2, 3, 4)
    H.fails("MultiheadAttention: expected the query of shape (B, L, 4), got [2,3,5]", m,
            ember.zeros(2, 3, 5), x, x)
    H.fails("MultiheadAttention: expected a 3-d (batched) or 2-d (unbatched) query, got shape [4]",
            m, ember.zeros(4), x, x)
    H.fails("MultiheadAttention: expected the key and value of shape (B, S, *) with B = 2", m,
            x, ember.zeros(1, 3, 4), ember.zeros(1, 3, 4))
    H.fails("MultiheadAttention: expected float32 query like the weights, got float64; convert it with :float() or the model with :double()", m,
            x:double(), x, x)
    H.fails("MultiheadAttention: expected key_padding_mask of shape [2,3], got [3,2]", m, x, x, x,
            {key_padding_mask = ember.zeros(3, 2, {dtype = "bool"})})
    H.fails("MultiheadAttention: expected attn_mask of shape [3,3] or [4,3,3], got [2,3,3]", m,
            x, x, x, {attn_mask = ember.zeros(2, 3, 3)})
    H.fails("MultiheadAttention: expected attn_mask of dtype bool or float32 (the query's), " ..
            "got int64", m, x, x, x, {attn_mask = ember.zeros(3, 3, {dtype = "int64"})})
    H.fails("MultiheadAttention: is_causal must be a boolean, got number", m, x, x, x,
            {is_causal = 1})
    H.fails("MultiheadAttention: unknown option 'mask'", m, x, x, x, {mask = x})
  end)
end)

describe("Transformer layers", function()
  it("name their submodules as PyTorch", function()
    local d = nn.TransformerDecoderLayer(8, 2, {dim_feedforward = 16})
    local got = {}
    for name in pairs(d:state_dict()) do got[#got + 1] = name end
    table.sort(got)
    assert.are.same({"linear1.bias", "linear1.weight", "linear2.bias", "linear2.weight",
                     "multihead_attn.in_proj_bias", "multihead_attn.in_proj_weight",
                     "multihead_attn.out_proj.bias", "multihead_attn.out_proj.weight",
                     "norm1.bias", "norm1.weight", "norm2.bias", "norm2.weight",
                     "norm3.bias", "norm3.weight",
                     "self_attn.in_proj_bias", "self_attn.in_proj_weight",
                     "self_attn.out_proj.bias", "self_attn.out_proj.weight"}, got)
    local nb = nn.TransformerEncoderLayer(8, 2, {bias = false})
    for name in pairs(nb:state_dict()) do assert.is_nil(name:match("bias")) end
  end)

  it("stack deep copies of the layer, numbered from 1", function()
    local layer = nn.TransformerEncoderLayer(4, 2, {dim_feedforward = 8, dtype = "float64"})
    local enc = nn.TransformerEncoder(layer, 3)
    assert.are.equal(3, #enc.layers)
    local sd = enc:state_dict()
    assert.is_not_nil(sd["layers.3.linear2.weight"])
    assert.is_nil(sd["layers.0.linear2.weight"])
    -- same values, separate tensors
    assert.are.equal(0, (sd["layers.1.linear1.weight"] - layer.linear1.weight):abs():max():item())
    enc.layers[1].linear1.weight:detach():fill_(0)
    assert.is_true(layer.linear1.weight:abs():max():item() > 0)
    assert.are.equal("float64", sd["layers.2.norm1.weight"].dtype)
  end)

  it("loads a PyTorch-named state dict after renaming layers.0 -> layers.1", function()
    local c = ref.encoder_2layers
    local enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16,
                                      dropout = 0, activation = "gelu", norm_first = true}), 2,
                                      {norm = nn.LayerNorm(8)})
    -- PyTorch's names, as torch's state_dict() writes them
    local torch_sd = {}
    for name, p in pairs(c.params) do
      torch_sd[name:gsub("^layers%.(%d+)%.", function(n) return "layers." .. n - 1 .. "." end)] = p
    end
    local sd = {}
    for name, p in pairs(torch_sd) do
      sd[name:gsub("^layers%.(%d+)%.", function(n) return "layers." .. n + 1 .. "." end)] = T(p)
    end
    enc:load_state_dict(sd)
    close(enc(T(c.inputs.src), {src_key_padding_mask = tensor_of(c.call.src_key_padding_mask)}),
          c.out, "renamed state dict")
  end)

  it("save and rebuild their architecture", function()
    local dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 2, {dim_feedforward = 8,
                                      norm_first = true, activation = "gelu"}), 2,
                                      {norm = nn.LayerNorm(4)})
    local copy = nn.from_config(dec:get_config())
    assert.are.equal(tostring(dec), tostring(copy))
    copy:load_state_dict(dec:state_dict())
    dec:eval(); copy:eval()
    local t, mem = ember.randn(2, 3, 4), ember.randn(2, 5, 4)
    assert.are.equal(0, (dec(t, mem) - copy(t, mem)):abs():max():item())
  end)

  it("check their arguments", function()
    H.fails("TransformerEncoderLayer: d_model (6) must be divisible by nhead (4)",
            nn.TransformerEncoderLayer, 6, 4)
    H.fails("TransformerEncoderLayer: activation must be 'relu' or 'gelu', got 'tanh'",
            nn.TransformerEncoderLayer, 4, 2, {activation = "tanh"})
    H.fails("TransformerDecoderLayer: unknown option 'nlayers'", nn.TransformerDecoderLayer, 4, 2,
            {nlayers = 2})
    H.fails("TransformerEncoder: expected a TransformerEncoderLayer, got a TransformerDecoderLayer",
            nn.TransformerEncoder, nn.TransformerDecoderLayer(4, 2), 2)
    H.fails("TransformerEncoder: num_layers must be >= 1, got 0", nn.TransformerEncoder,
            nn.TransformerEncoderLayer(4, 2), 0)
    local enc = nn.TransformerEncoderLayer(4, 2, {dim_feedforward = 8, norm_first = true})
    H.fails("TransformerEncoderLayer: expected the input (src) of shape (B, L, 4) or (L, 4), " ..
            "got [2,3,5]", enc, ember.zeros(2, 3, 5))
    H.fails("TransformerEncoderLayer: expected src_key_padding_mask of shape [2,3], got [2,4]",
            enc, ember.zeros(2, 3, 4), {src_key_padding_mask = ember.zeros(2, 4, {dtype = "bool"})})
    H.fails("TransformerEncoderLayer: expected src_mask of dtype bool or float32", enc,
            ember.zeros(2, 3, 4), {src_mask = ember.zeros(3, 3, {dtype = "int32"})})
    local dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 2, {dim_feedforward = 8}), 2)
    H.fails("TransformerDecoder: expected memory_mask of shape [3,5] or [4,3,5], got [3,3]", dec,
            ember.zeros(2, 3, 4), ember.zeros(2, 5, 4), {memory_mask = ember.zeros(3, 3)})
    H.fails("TransformerDecoder: tgt_is_causal must be a boolean, got string", dec,
            ember.zeros(2, 3, 4), ember.zeros(2, 5, 4), {tgt_is_causal = "yes"})
    H.fails("TransformerDecoder: expected the memory of shape (B, L, 4) or (L, 4), got [2,5,3]",
            dec, ember.zeros(2, 3, 4), ember.zeros(2, 5, 3))
  end)

  it("blame the caller's line, however deep the check", function()
    local enc = nn.TransformerEncoderLayer(4, 2, {dim_feedforward = 8, norm_first = true})
    local dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 2, {dim_feedforward = 8}), 2)
    local mha = nn.MultiheadAttention(4, 2)
    local x, bad = ember.zeros(2, 3, 4), ember.zeros(2, 2)
    local cases = {
      function() local r = enc(x, {src_mask = bad}); return r end,
      function() local r = enc(ember.zeros(2, 3, 5)); return r end,
      function() local r = dec(x, x, {memory_key_padding_mask = bad}); return r end,
      function() local r = dec.layers[2](x, x, {tgt_mask = bad}); return r end,
      function() local r = mha(x, x, x, {attn_mask = bad}); return r end,
      function() local r = nn.TransformerDecoderLayer(4, 3); return r end,
    }
    for i, fn in ipairs(cases) do
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("transformer_spec.lua:", 1, true), i .. ": " .. err)
    end
  end)
end)

describe("transformer gradients (finite differences, float64)", function()
  local f64 = {dtype = "float64"}
  local function check(m, fn, inputs)
    for _, p in ipairs(m:parameters()) do inputs[#inputs + 1] = p end
    gradcheck.check(fn, inputs)
  end
  it("MultiheadAttention with weights and a key padding mask", function()
    local m = nn.MultiheadAttention(4, 2, {kdim = 3, vdim = 2, dtype = "float64"})
    local q = ember.randn(2, 3, 4, f64):requires_grad_(true)
    local k = ember.randn(2, 2, 3, f64):requires_grad_(true)
    local v = ember.randn(2, 2, 2, f64):requires_grad_(true)
    local kpm = ember.tensor({{false, true}, {false, false}}, {dtype = "bool"})
    check(m, function()
      local o, w = m(q, k, v, {key_padding_mask = kpm, need_weights = true})
      return (o * o):sum() + (w * w):sum()
    end, {q, k, v})
  end)
  it("a causal decoder layer, norm first", function()
    local m = nn.TransformerDecoderLayer(4, 2, {dim_feedforward = 6, dropout = 0,
                                         norm_first = true, activation = "gelu", dtype = "float64"})
    local t = ember.randn(2, 3, 4, f64):requires_grad_(true)
    local mem = ember.randn(2, 2, 4, f64):requires_grad_(true)
    check(m, function()
      local o = m(t, mem, {tgt_is_causal = true})
      return (o * o):sum()
    end, {t, mem})
  end)
end)
