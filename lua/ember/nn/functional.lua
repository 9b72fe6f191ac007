--- ember.nn.functional (also ember.nn.F): the layers as plain functions.
-- The layer modules call these.  They are written with differentiable
-- ember ops only (no values read back into Lua in the middle of a
-- computation), so autograd gives their gradients.  The losses come from
-- ember.nn.loss_functional and are merged in at the end.
local ember = require "ember"
local common = require "ember.nn.common"

local F = {}

local check_tensor, check_float = common.check_tensor, common.check_float
local check_number = common.check_number

-- {======================================================================
-- Activations
-- =======================================================================

function F.relu(x) check_tensor("relu", x, "the input", 2); return x:relu() end
function F.sigmoid(x) check_tensor("sigmoid", x, "the input", 2); return x:sigmoid() end
function F.tanh(x) check_tensor("tanh", x, "the input", 2); return x:tanh() end

--- SiLU (swish): x * sigmoid(x), one kernel each way (ember.silu).
function F.silu(x)
  check_float("silu", x, "the input", 2)
  return x:silu()
end

--- Mish: x * tanh(softplus(x)), with softplus(x) = max(x, 0) +
-- log1p(exp(-|x|)), which neither overflows for large x nor loses the
-- small values of large negative x.
function F.mish(x)
  check_float("mish", x, "the input", 2)
  local softplus = x:relu() + (-x:abs()):exp():log1p()
  return x * softplus:tanh()
end

--- max(x, 0) + slope * min(x, 0).  Without ember.leaky_relu it is built as
-- relu(x) - slope * relu(-x), which has the same values and gradients.
function F.leaky_relu(x, negative_slope)
  check_float("leaky_relu", x, "the input", 2)
  local slope = negative_slope == nil and 0.01 or negative_slope
  common.check_number("leaky_relu", slope, "negative_slope", nil, nil, 2)
  if ember.leaky_relu then return ember.leaky_relu(x, slope) end
  return x:relu() - (-x):relu() * slope
end

--- GELU: x * Phi(x) ("none") or its tanh approximation ("tanh").
function F.gelu(x, approximate)
  check_float("gelu", x, "the input", 2)
  approximate = approximate or "none"
  if approximate ~= "none" and approximate ~= "tanh" then
    error(("gelu: approximate must be 'none' or 'tanh', got '%s'"):format(tostring(approximate)), 2)
  end
  if ember.gelu then return ember.gelu(x, approximate) end
  if approximate == "tanh" then
    local inner = (x + x ^ 3 * 0.044715) * math.sqrt(2 / math.pi)
    return x * 0.5 * (inner:tanh() + 1)
  end
  if not ember.erf then error("gelu: needs ember.erf, which this build lacks", 2) end
  return x * 0.5 * (ember.erf(x * (1 / math.sqrt(2))) + 1)
end

local function check_dim(fname, x, dim)
  if math.type(dim) ~= "integer" then
    error(("%s: dim must be an integer, got %s"):format(fname, dim == nil and "nil" or type(dim)), 3)
  end
end

--- softmax along dim (required, as in PyTorch 2: an implicit dim is a
-- common source of bugs).
function F.softmax(x, dim)
  check_tensor("softmax", x, "the input", 2)
  check_dim("softmax", x, dim)
  return x:softmax(dim)
end

function F.log_softmax(x, dim)
  check_tensor("log_softmax", x, "the input", 2)
  check_dim("log_softmax", x, dim)
  return x:log_softmax(dim)
end

-- }======================================================================

-- {======================================================================
-- Attention
-- =======================================================================

local SDPA = {attn_mask = true, is_causal = true, dropout_p = true, scale = true,
              generator = true}

--- softmax(q k^T * scale + attn_mask) v over the last two dims, in one
-- fused kernel (PyTorch 2.x's scaled_dot_product_attention): q (..., L, E),
-- k (..., S, E), v (..., S, Ev) with the same batch dims give (..., L, Ev).
-- opts: attn_mask (bool: true where a query may attend; or q's dtype,
-- added), is_causal (top-left: query i sees keys 1..i; not with a mask),
-- scale (default 1/sqrt(E)), dropout_p (default 0; above 0 the weights are
-- made whole and dropped, PyTorch's math path, drawing from generator).
function F.scaled_dot_product_attention(q, k, v, opts)
  local fn = "scaled_dot_product_attention"
  check_float(fn, q, "the query", 2)
  check_float(fn, k, "the key", 2)
  check_float(fn, v, "the value", 2)
  opts = common.options(fn, opts, SDPA, 2)
  local mask, causal, scale = opts.attn_mask, opts.is_causal, opts.scale
  if mask ~= nil then check_tensor(fn, mask, "attn_mask", 2) end
  if causal ~= nil and type(causal) ~= "boolean" then
    error(("%s: is_causal must be a boolean, got %s"):format(fn, type(causal)), 2)
  end
  if scale ~= nil then check_number(fn, scale, "scale", nil, nil, 2) end
  local p = opts.dropout_p
  if p ~= nil then check_number(fn, p, "dropout_p", 0, 1, 2) end
  local ok, r = pcall(ember._scaled_dot_product_attention, q, k, v, mask,
                      causal == true, scale, p, opts)
  if not ok then error(r, 2) end
  return r
end

-- }======================================================================

-- {======================================================================
-- Linear, convolution, pooling, flatten
-- =======================================================================

--- x @ w^T + b; x is [..., in], w is [out, in], b is [out] or nil.
function F.linear(x, w, b)
  check_float("linear", x, "the input", 2)
  check_float("linear", w, "the weight", 2)
  if w:dim() ~= 2 then
    error(("linear: weight must be 2-d [out,in], got shape %s"):format(common.shape_str(w)), 2)
  end
  if x:dim() < 1 or x:size(-1) ~= w:size(2) then
    error(("linear: input shape %s does not match weight shape %s (expected %d input features)")
          :format(common.shape_str(x), common.shape_str(w), w:size(2)), 2)
  end
  local y = x:matmul(w:t())
  if b ~= nil then
    check_float("linear", b, "the bias", 2)
    if b:dim() ~= 1 or b:size(1) ~= w:size(1) then
      error(("linear: bias shape %s does not match %d output features")
            :format(common.shape_str(b), w:size(1)), 2)
    end
    y = y + b
  end
  return y
end

local function need(fname, op)
  if not ember[op] then
    error(("%s: needs ember.%s, which this build lacks"):format(fname, op), 3)
  end
  return ember[op]
end

local CONV = {stride = true, padding = true, dilation = true, groups = true}

--- 2-d convolution: x [N,C,H,W] (or [C,H,W]), w [O,C/groups,KH,KW], b [O]
-- or nil.  stride, padding, dilation: an int or {h, w}.  Options may come
-- positionally (stride, padding, dilation, groups) or as a table.
function F.conv2d(x, w, b, stride, padding, dilation, groups)
  check_float("conv2d", x, "the input", 2)
  check_float("conv2d", w, "the weight", 2)
  if b ~= nil then check_float("conv2d", b, "the bias", 2) end
  if common.is_options(stride) then
    local o = common.options("conv2d", stride, CONV, 2)
    stride, padding, dilation, groups = o.stride, o.padding, o.dilation, o.groups
  end
  local conv2d = need("conv2d", "conv2d")
  return conv2d(x, w, b, stride or 1, padding or 0, dilation or 1, groups or 1)
end

--- relu(conv2d(...)) in one pass (the arguments positional, as Conv2d
-- passes them): what Sequential runs for a Conv2d followed by a ReLU.
function F._conv2d_relu(x, w, b, stride, padding, dilation, groups)
  check_float("conv2d", x, "the input", 2)
  check_float("conv2d", w, "the weight", 2)
  if b ~= nil then check_float("conv2d", b, "the bias", 2) end
  local conv2d_relu = need("conv2d", "_conv2d_relu")
  return conv2d_relu(x, w, b, stride, padding, dilation, groups)
end

local MAXPOOL = {stride = true, padding = true, dilation = true, ceil_mode = true,
                 return_indices = true}

--- Max pooling over [N,C,H,W] (or [C,H,W]); stride defaults to the kernel.
function F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
  check_float("max_pool2d", x, "the input", 2)
  if common.is_options(stride) then
    local o = common.options("max_pool2d", stride, MAXPOOL, 2)
    stride, padding, dilation, ceil_mode, return_indices =
      o.stride, o.padding, o.dilation, o.ceil_mode, o.return_indices
  end
  local pool = need("max_pool2d", "max_pool2d")
  return pool(x, kernel_size, stride or kernel_size, padding or 0, dilation or 1,
              ceil_mode or false, return_indices or false)
end

local AVGPOOL = {stride = true, padding = true, ceil_mode = true, count_include_pad = true}

--- Average pooling over [N,C,H,W] (or [C,H,W]); stride defaults to the kernel.
function F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad)
  check_float("avg_pool2d", x, "the input", 2)
  if common.is_options(stride) then
    local o = common.options("avg_pool2d", stride, AVGPOOL, 2)
    stride, padding, ceil_mode, count_include_pad =
      o.stride, o.padding, o.ceil_mode, o.count_include_pad
  end
  if count_include_pad == nil then count_include_pad = true end
  local pool = need("avg_pool2d", "avg_pool2d")
  return pool(x, kernel_size, stride or kernel_size, padding or 0, ceil_mode or false,
              count_include_pad)
end

--- Merge dims start_dim..end_dim (defaults 1 and -1, as t:flatten).
function F.flatten(x, start_dim, end_dim)
  check_tensor("flatten", x, "the input", 2)
  return x:flatten(start_dim or 1, end_dim or -1)
end

-- }======================================================================

-- {======================================================================
-- Dropout, normalisation, embedding
-- =======================================================================

--- Zero each element with probability p and scale the rest by 1/(1-p),
-- when training (default true); identity otherwise.  The mask is drawn
-- from opts.generator (an ember.Generator) or ember's own; an options
-- table may stand in place of `training`.
function F.dropout(x, p, training, opts)
  check_float("dropout", x, "the input", 2)
  p = p == nil and 0.5 or p
  common.check_number("dropout", p, "p", 0, 1, 2)
  if type(training) == "table" and opts == nil then training, opts = nil, training end
  opts = common.options("dropout", opts, {generator = true}, 3)
  if training == false or p == 0 then return x end
  if p == 1 then return x * 0 end
  local keep = ember.rand_like(x, {generator = opts.generator}):ge(p):to(x.dtype)
  return x * keep * (1 / (1 - p))
end

--- The shape that puts a [C] vector on dim 2 of x: {1, C, 1, ...}.
local function channel_shape(x)
  local s = {1, x:size(2)}
  for _ = 3, x:dim() do s[#s + 1] = 1 end
  return s
end

--- Per-channel mean and biased variance of x over every dim but 2.
local function channel_stats(x)
  local flat = x:transpose(1, 2):reshape(x:size(2), -1)
  return flat:mean(2), flat:var(2, false, false), flat:size(2)
end

local function check_vec(fname, v, what, c)
  if v == nil then return end
  check_float(fname, v, what, 3)
  if v:dim() ~= 1 or v:size(1) ~= c then
    error(("%s: %s must have shape [%d], got %s"):format(fname, what, c, common.shape_str(v)), 3)
  end
end

--- Batch normalisation over dim 2 (the channels) of x [N,C,...].  In
-- training (or without running stats) it normalises with the batch
-- statistics and, given running_mean/var, updates them in place (no_grad)
-- with momentum and the unbiased variance, as PyTorch.
function F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
  check_float("batch_norm", x, "the input", 2)
  if x:dim() < 2 then
    error(("batch_norm: expected an input of 2 or more dimensions [N,C,...], got shape %s")
          :format(common.shape_str(x)), 2)
  end
  local c = x:size(2)
  check_vec("batch_norm", running_mean, "running_mean", c)
  check_vec("batch_norm", running_var, "running_var", c)
  check_vec("batch_norm", weight, "weight", c)
  check_vec("batch_norm", bias, "bias", c)
  if (running_mean == nil) ~= (running_var == nil) then
    error("batch_norm: give both running_mean and running_var, or neither", 2)
  end
  momentum, eps = momentum == nil and 0.1 or momentum, eps or 1e-5
  local shape = channel_shape(x)
  local mean, var
  if training or running_mean == nil then
    local n
    mean, var, n = channel_stats(x)
    if training and n <= 1 then
      error(("batch_norm: expected more than 1 value per channel when training, got input " ..
             "shape %s"):format(common.shape_str(x)), 2)
    end
    if training and running_mean ~= nil then
      common.no_grad(function()
        local m, v = common.detach(mean), common.detach(var) * (n / (n - 1))
        running_mean:mul_(1 - momentum):add_(m * momentum)
        running_var:mul_(1 - momentum):add_(v * momentum)
      end)
    end
  else
    mean, var = running_mean, running_var
  end
  local y = (x - mean:view(shape)) / (var:view(shape) + eps):sqrt()
  if weight ~= nil then y = y * weight:view(shape) end
  if bias ~= nil then y = y + bias:view(shape) end
  return y
end

--- Check that x is floating and ends with normalized_shape (an integer or
-- a list of sizes), and that each given parameter has that shape; returns
-- the shape as a list.
local function normalized_input(fname, x, normalized_shape, params)
  check_float(fname, x, "the input", 3)
  if math.type(normalized_shape) == "integer" then normalized_shape = {normalized_shape} end
  if type(normalized_shape) ~= "table" or #normalized_shape == 0 then
    error(fname .. ": normalized_shape must be an integer or a non-empty table of integers", 3)
  end
  local k, nd = #normalized_shape, x:dim()
  local ok = nd >= k
  for i = 1, k do ok = ok and x:size(nd - k + i) == normalized_shape[i] end
  if not ok then
    error(("%s: input shape %s does not end with normalized_shape [%s]")
          :format(fname, common.shape_str(x), table.concat(normalized_shape, ",")), 3)
  end
  local want = "[" .. table.concat(normalized_shape, ",") .. "]"
  for _, v in ipairs(params) do
    if v and common.shape_str(check_float(fname, v, params.what, 3)) ~= want then
      error(("%s: %s must have shape %s, got %s")
            :format(fname, params.what, want, common.shape_str(v)), 3)
    end
  end
  return normalized_shape
end

--- Normalise over the last #normalized_shape dims of x, then scale and
-- shift by weight and bias (of shape normalized_shape) when given.
-- The arguments are checked here (PyTorch's messages); the work is one
-- fused op each way (ember.layer_norm: statistics, scale and shift in one
-- kernel; dx, dweight, dbias in one backward kernel).
function F.layer_norm(x, normalized_shape, weight, bias, eps)
  local shape = normalized_input("layer_norm", x, normalized_shape,
                                 {weight or false, bias or false, what = "weight and bias"})
  return ember.layer_norm(x, #shape, weight and weight:to(x.dtype), bias and bias:to(x.dtype),
                          eps or 1e-5)
end

--- The machine epsilon of a floating dtype (PyTorch's torch.finfo(dtype).eps).
local FINFO_EPS = {float32 = 2.0 ^ -23, float64 = 2.0 ^ -52}

--- RMSNorm (PyTorch 2.4's F.rms_norm): x / sqrt(mean(x^2) + eps) over the
-- last #normalized_shape dims, times weight when given.  eps defaults to
-- the machine epsilon of x's dtype, as in PyTorch.
function F.rms_norm(x, normalized_shape, weight, eps)
  local shape = normalized_input("rms_norm", x, normalized_shape,
                                 {weight or false, what = "weight"})
  if eps == nil then eps = FINFO_EPS[x.dtype] end
  common.check_number("rms_norm", eps, "eps", 0, nil, 2)
  return ember.rms_norm(x, #shape, weight and weight:to(x.dtype), eps)   -- fused, as layer_norm
end

--- Rows of weight [num, dim] at the 1-based int64/int32 indices of idx;
-- the result has idx's shape plus dim.  With padding_idx, that row gets
-- no gradient (its value is still returned, as in PyTorch).  The backward
-- is one index_add_ of the flattened gradient rows into zeros: threaded by
-- columns on the CPU (index order, the same bits on any thread count),
-- atomic adds on CUDA (core/cpu/index.c, core/cuda/index.cu).
function F.embedding(idx, weight, padding_idx)
  check_tensor("embedding", idx, "the indices", 2)
  check_float("embedding", weight, "the weight", 2)
  if idx.dtype ~= "int64" and idx.dtype ~= "int32" then
    error(("embedding: expected int64 or int32 indices, got %s"):format(idx.dtype), 2)
  end
  if weight:dim() ~= 2 then
    error(("embedding: weight must be 2-d [num,dim], got shape %s"):format(common.shape_str(weight)), 2)
  end
  local num = weight:size(1)
  -- on a GPU without a wait: a bad index is reported by the next sync
  common.check_index(idx, 1, num, nil, "embedding: index ",
                     (" is out of range for %d embeddings (indices count from 1)"):format(num), 2)
  local shape = idx:shape()
  shape[#shape + 1] = weight:size(2)
  local out = weight:index_select(1, idx:reshape(-1)):view(shape)
  if padding_idx ~= nil and common.requires_grad(weight) then
    local keep = idx:ne(padding_idx):unsqueeze(-1)
    out = ember.where(keep, out, common.detach(out))
  end
  return out
end

-- }======================================================================

for k, v in pairs(require "ember.nn.loss_functional") do F[k] = v end

return F
