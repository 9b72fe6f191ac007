-- CPU/GPU parity of nn.MultiheadAttention and the Transformer layers (GPU
-- only; on the stand-in plugin without a GPU): the layers are composed of
-- ember ops (the fused attention among them), so this checks that every op
-- they use runs on the device, keeps its result there, and agrees with the
-- CPU (matmuls may sum in another order: 1e-10 relative in float64).
-- Without a CUDA device this file is one pending test that says why
-- (spec/helpers/cuda.lua).
local ember = require "ember"
local nn = ember.nn
local cuda_helper = require "helpers.cuda"

local function compare(what, dev, cpu) cuda_helper.compare(what, dev, cpu, 1e-10) end

--- The tensors of a table moved to the device (dev) or kept (a copy).
local function place(t, dev)
  if t == nil then return nil end
  local out = {}
  for k, v in pairs(t) do
    out[k] = ember.is_tensor(v) and (dev and v:cuda() or v:clone()) or v
  end
  return out
end

--- Run m on the CPU and a copy on the device from the same weights, inputs
-- (a list) and options; compare the outputs (and weights) and every gradient.
local function parity(name, m, inputs, opts)
  local md = nn.from_config(m:get_config())
  md:load_state_dict(m:state_dict())
  md:cuda()
  local function run(mod, dev)
    local xs = {}
    for i, x in ipairs(inputs) do xs[i] = (dev and x:cuda() or x:clone()):requires_grad_(true) end
    local args = {table.unpack(xs)}
    args[#args + 1] = place(opts, dev)
    local out, w = mod(table.unpack(args, 1, #xs + 1))
    local loss = (out * out):sum()
    if w then loss = loss + (w * w):sum() end
    loss:backward()
    local grads = {}
    for i, x in ipairs(xs) do grads[i] = x.grad end
    return out, w, grads
  end
  local a, w, g = run(m, false)
  local ad, wd, gd = run(md, true)
  compare(name .. " output", ad, a)
  if w then compare(name .. " weights", wd, w) end
  for i = 1, #g do compare(name .. " grad input " .. i, gd[i], g[i]) end
  local dev_params = {}
  for pname, p in md:named_parameters() do dev_params[pname] = p end
  for pname, p in m:named_parameters() do
    compare(name .. " grad " .. pname, dev_params[pname].grad, p.grad)
  end
end

describe("transformer layers on cuda", function()
  if not cuda_helper.available() then return end
  before_each(function() ember.manual_seed(7) end)
  local f64 = {dtype = "float64"}
  local kpm = function() return ember.tensor({{false, false, true}, {false, false, false}},
                                             {dtype = "bool"}) end

  it("MultiheadAttention, fused, with a key padding mask and a float mask", function()
    local m = nn.MultiheadAttention(8, 2, {kdim = 5, vdim = 6, dtype = "float64"})
    parity("mha", m, {ember.randn(2, 4, 8, f64), ember.randn(2, 3, 5, f64),
                      ember.randn(2, 3, 6, f64)},
           {key_padding_mask = kpm(), attn_mask = ember.randn(4, 3, f64)})
  end)

  it("MultiheadAttention, causal, with weights per head", function()
    local m = nn.MultiheadAttention(8, 4, f64)
    local x = ember.randn(2, 5, 8, f64)
    parity("mha causal", m, {x, x, x}, {is_causal = true, need_weights = true,
                                        average_attn_weights = false})
  end)

  for _, nf in ipairs{false, true} do
    it("TransformerEncoder, 2 layers, norm_first = " .. tostring(nf), function()
      local layer = nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16, dropout = 0,
                                               activation = "gelu", norm_first = nf,
                                               dtype = "float64"})
      local m = nn.TransformerEncoder(layer, 2, {norm = nn.LayerNorm(8, f64)})
      parity("encoder", m, {ember.randn(2, 3, 8, f64)}, {src_key_padding_mask = kpm(),
                                                          is_causal = true})
    end)

    it("TransformerDecoder, 2 layers, norm_first = " .. tostring(nf), function()
      local layer = nn.TransformerDecoderLayer(8, 2, {dim_feedforward = 16, dropout = 0,
                                               norm_first = nf, dtype = "float64"})
      local m = nn.TransformerDecoder(layer, 2)
      parity("decoder", m, {ember.randn(2, 4, 8, f64), ember.randn(2, 3, 8, f64)},
             {tgt_is_causal = true, memory_key_padding_mask = kpm()})
    end)
  end
end)
