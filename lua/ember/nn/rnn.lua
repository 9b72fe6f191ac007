--- Recurrent layers: RNN, LSTM, GRU (whole sequences, stacked, optionally
-- bidirectional) and RNNCell, LSTMCell, GRUCell (one time step).
--
-- Batch first: a sequence is (B, L, input_size) in and (B, L, D*hidden_size)
-- out (D = 2 when bidirectional), or unbatched (L, input_size).  Gates,
-- parameter names and shapes are PyTorch's, except that layer numbers are
-- 1-based: PyTorch's weight_ih_l0 is weight_ih_l1 here, so a state dict
-- maps by renaming _l{k} to _l{k+1}.  Gate order: LSTM i, f, g, o; GRU r, z,
-- n with n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
--
-- The layers are composed of differentiable ember ops, so autograd and every
-- device come from those.  Per layer and direction the input projection of
-- the whole sequence is one matmul, (B*L, in) @ W_ih^T; each time step then
-- adds h @ W_hh^T and applies the gates: for LSTM and GRU one fused op
-- each way (ember.lstm_cell, ember.gru_cell, core/ops/rnn.c).
local ember = require "ember"
local common = require "ember.nn.common"
local Module = require "ember.nn.module"
local F = require "ember.nn.functional"
local init = require "ember.nn.initializers"

local M = {}

-- {======================================================================
-- One time step
-- =======================================================================

-- Each step takes gx, the input projection x W_ih^T + b_ih of this step
-- (B, G*H), the state h (B, H) [and c], W_hh^T (H, G*H) and b_hh (nil when
-- it was folded into gx, which the sequence layers do for RNN and LSTM:
-- there b_hh only ever adds to the same sum).  Returns the new h [and c].
local STEP = {}

function STEP.RNN_TANH(gx, h, _, w_hh_t, b_hh)
  local a = gx + h:matmul(w_hh_t)
  if b_hh then a = a + b_hh end
  return a:tanh()
end

function STEP.RNN_RELU(gx, h, _, w_hh_t, b_hh)
  local a = gx + h:matmul(w_hh_t)
  if b_hh then a = a + b_hh end
  return a:relu()
end

-- The gate nonlinearities and the state update are one fused op each way
-- (ember.lstm_cell, core/ops/rnn.c).
function STEP.LSTM(gx, h, c, w_hh_t, b_hh)
  local gates = gx + h:matmul(w_hh_t)
  if b_hh then gates = gates + b_hh end
  return ember.lstm_cell(gates, c)
end

function STEP.GRU(gx, h, _, w_hh_t, b_hh)
  -- b_hh cannot fold into gx: its n part is scaled by r
  local gh = h:matmul(w_hh_t)
  if b_hh then gh = gh + b_hh end
  return ember.gru_cell(gx, gh, h)     -- fused, as ember.lstm_cell
end

-- Gates per mode: the rows of W_ih and W_hh are G * hidden_size.
local GATES = {RNN_TANH = 1, RNN_RELU = 1, LSTM = 4, GRU = 3}

-- }======================================================================

-- {======================================================================
-- Shared checks
-- =======================================================================

--- Every parameter ~ U(-1/sqrt(H), 1/sqrt(H)), PyTorch's default.
local function reset_uniform(self)
  local bound = self.hidden_size > 0 and 1 / math.sqrt(self.hidden_size) or 0
  for _, p in ipairs(self:parameters()) do init.uniform_(p, -bound, bound) end
end

--- x must be a tensor of the weights' dtype and of dim batched_dim (or one
-- less: unbatched) whose last dim is input_size.  Returns x with a batch
-- dim and whether it had one.
local function check_input(self, fname, x, batched_dim, level)
  level = level + 1
  common.check_input(fname, x, self:_weight_dtype(), "the input", level)
  if x:dim() ~= batched_dim and x:dim() ~= batched_dim - 1 then
    error(("%s: expected a %d-d (batched) or %d-d (unbatched) input, got shape %s"):format(
          fname, batched_dim, batched_dim - 1, common.shape_str(x)), level)
  end
  if x:size(-1) ~= self.input_size then
    error(("%s: expected input_size %d in the last dim of the input, got shape %s"):format(
          fname, self.input_size, common.shape_str(x)), level)
  end
  local batched = x:dim() == batched_dim
  return batched and x or x:unsqueeze(1), batched
end

--- A state tensor: given, it must have `shape` once the batch dim (bdim) is
-- added back for an unbatched input; absent, zeros of that shape.
local function state(fname, t, what, shape, batched, bdim, like, level)
  level = level + 1
  if t == nil then
    return ember.zeros(shape, {dtype = like.dtype, device = like.device})
  end
  common.check_float(fname, t, what, level)
  if not batched then t = t:unsqueeze(bdim) end
  local s = t:shape()
  local ok = #s == #shape
  for k = 1, #shape do ok = ok and s[k] == shape[k] end
  if not ok then
    local want = {table.unpack(shape)}
    if not batched then table.remove(want, bdim) end
    error(("%s: expected %s of shape %s, got %s"):format(fname, what,
          "[" .. table.concat(want, ",") .. "]", common.shape_str(batched and t or t:squeeze(bdim))),
          level)
  end
  if t.dtype ~= like.dtype then
    error(("%s: %s is %s but the input is %s"):format(fname, what, t.dtype, like.dtype), level)
  end
  return t
end

--- The (h0 [, c0]) of hx for an LSTM ({h0, c0}) or another mode (h0).
local function split_hx(fname, mode, hx, level)
  if mode ~= "LSTM" or hx == nil then return hx, nil end
  if type(hx) ~= "table" or ember.is_tensor(hx) or #hx ~= 2 then
    error(("%s: the initial state must be a table {h0, c0}, got %s"):format(fname,
          ember.is_tensor(hx) and "a tensor" or type(hx)), level + 1)
  end
  return hx[1], hx[2]
end

-- }======================================================================

-- {======================================================================
-- RNN, LSTM, GRU
-- =======================================================================

local RNNBase = Module:extend("RNNBase")
M._RNNBase = RNNBase

local SEQ_OPTS = {num_layers = true, dropout = true, bidirectional = true, bias = true,
                  batch_first = true, dtype = true}

--- RNNBase(mode, fname, input_size, hidden_size, opts): see nn.LSTM.
function RNNBase:init(mode, fname, input_size, hidden_size, opts)
  local known = SEQ_OPTS
  if fname == "RNN" then
    known = {nonlinearity = true}
    for k in pairs(SEQ_OPTS) do known[k] = true end
  end
  input_size = common.check_int(fname, input_size, "input_size", 0, 4)
  hidden_size = common.check_int(fname, hidden_size, "hidden_size", 1, 4)
  opts = common.options(fname, opts, known, 4)
  if opts.nonlinearity ~= nil then
    if opts.nonlinearity ~= "tanh" and opts.nonlinearity ~= "relu" then
      error(("RNN: nonlinearity must be 'tanh' or 'relu', got '%s'"):format(
            tostring(opts.nonlinearity)), 4)
    end
    mode = opts.nonlinearity == "relu" and "RNN_RELU" or "RNN_TANH"
  end
  if opts.batch_first == false then
    error(fname .. ": only batch_first = true is supported (inputs are (B, L, input_size))", 4)
  end
  self.mode, self._fname = mode, fname
  self.input_size, self.hidden_size = input_size, hidden_size
  self.num_layers = common.check_int(fname, common.opt(opts, "num_layers", 1), "num_layers", 1, 4)
  self.dropout = common.check_number(fname, common.opt(opts, "dropout", 0), "dropout", 0, 1, 4)
  self.bidirectional = common.opt(opts, "bidirectional", false) and true or false
  self.bias = common.opt(opts, "bias", true) and true or false
  local dt = {dtype = opts.dtype or "float32"}
  local G, D = GATES[mode], self.bidirectional and 2 or 1
  -- PyTorch's order: per layer, per direction, w_ih, w_hh, b_ih, b_hh
  for l = 1, self.num_layers do
    local in_l = l == 1 and input_size or D * hidden_size
    for d = 1, D do
      local sfx = "_l" .. l .. (d == 2 and "_reverse" or "")
      self:register_parameter("weight_ih" .. sfx, ember.empty(G * hidden_size, in_l, dt))
      self:register_parameter("weight_hh" .. sfx, ember.empty(G * hidden_size, hidden_size, dt))
      if self.bias then
        self:register_parameter("bias_ih" .. sfx, ember.empty(G * hidden_size, dt))
        self:register_parameter("bias_hh" .. sfx, ember.empty(G * hidden_size, dt))
      end
    end
  end
  self:reset_parameters()
end

RNNBase.reset_parameters = reset_uniform

function RNNBase:_weight_dtype() return self.weight_ih_l1.dtype end

--- One layer in one direction over the whole sequence x (B, L, in) from
-- state h [, c] (B, H).  Returns the outputs (B, L, H) and the last state.
function RNNBase:_direction(x, sfx, h, c, reverse)
  local B, L = x:size(1), x:size(2)
  local w_ih, b_ih, b_hh = self["weight_ih" .. sfx], self["bias_ih" .. sfx], self["bias_hh" .. sfx]
  local b = b_ih
  if b_ih and self.mode ~= "GRU" then b, b_hh = b_ih + b_hh, nil end
  local gx = F.linear(x:reshape(B * L, x:size(3)), w_ih, b):view(B, L, w_ih:size(1))
  local w_hh_t, step = self["weight_hh" .. sfx]:t(), STEP[self.mode]
  local outs = {}
  for s = 1, L do
    local t = reverse and L - s + 1 or s
    h, c = step(gx:select(2, t), h, c, w_hh_t, b_hh)
    outs[t] = h
  end
  return ember.stack(outs, 2), h, c
end

--- m(x [, hx]) -> output, h_n (LSTM: output, {h_n, c_n}).
function RNNBase:forward(x, hx)
  local fname, lstm = self._fname, self.mode == "LSTM"
  local batched
  x, batched = check_input(self, fname, x, 3, 2)
  local B, L, H = x:size(1), x:size(2), self.hidden_size
  if L == 0 then
    error(fname .. ": expected a sequence length larger than 0, got shape "
          .. common.shape_str(x), 2)
  end
  local D = self.bidirectional and 2 or 1
  local h0, c0 = split_hx(fname, self.mode, hx, 2)
  local shape = {self.num_layers * D, B, H}
  h0 = state(fname, h0, lstm and "h0" or "hx", shape, batched, 2, x, 2)
  if lstm then c0 = state(fname, c0, "c0", shape, batched, 2, x, 2) end
  local hn, cn, input = {}, {}, x
  for l = 1, self.num_layers do
    if l > 1 and self.dropout > 0 and self.training then
      input = F.dropout(input, self.dropout, true)
    end
    local outs = {}
    for d = 1, D do
      local k = (l - 1) * D + d
      outs[d], hn[k], cn[k] = self:_direction(input, "_l" .. l .. (d == 2 and "_reverse" or ""),
                                              h0:select(1, k), c0 and c0:select(1, k), d == 2)
    end
    input = D == 2 and ember.cat(outs, 3) or outs[1]
  end
  local h_n, c_n = ember.stack(hn, 1), lstm and ember.stack(cn, 1) or nil
  if not batched then
    input, h_n, c_n = input:squeeze(1), h_n:squeeze(2), c_n and c_n:squeeze(2)
  end
  if lstm then return input, {h_n, c_n} end
  return input, h_n
end

function RNNBase:extra_repr()
  local s = ("%d, %d"):format(self.input_size, self.hidden_size)
  if self.mode == "RNN_RELU" then s = s .. ", nonlinearity='relu'" end
  if self.num_layers ~= 1 then s = s .. ", num_layers=" .. self.num_layers end
  if not self.bias then s = s .. ", bias=false" end
  if self.dropout ~= 0 then s = s .. (", dropout=%g"):format(self.dropout) end
  if self.bidirectional then s = s .. ", bidirectional=true" end
  return s
end

--- nn.RNN(input_size, hidden_size [, opts]): h' = tanh(x W_ih^T + b_ih +
-- h W_hh^T + b_hh) (opts.nonlinearity = "relu": relu).
local RNN = RNNBase:extend("RNN")
M.RNN = RNN
function RNN:init(input_size, hidden_size, opts)
  RNNBase.init(self, "RNN_TANH", "RNN", input_size, hidden_size, opts)
end

--- nn.LSTM(input_size, hidden_size [, opts]).
local LSTM = RNNBase:extend("LSTM")
M.LSTM = LSTM
function LSTM:init(input_size, hidden_size, opts)
  RNNBase.init(self, "LSTM", "LSTM", input_size, hidden_size, opts)
end

--- nn.GRU(input_size, hidden_size [, opts]).
local GRU = RNNBase:extend("GRU")
M.GRU = GRU
function GRU:init(input_size, hidden_size, opts)
  RNNBase.init(self, "GRU", "GRU", input_size, hidden_size, opts)
end

-- }======================================================================

-- {======================================================================
-- Cells
-- =======================================================================

local CellBase = Module:extend("RNNCellBase")
M._RNNCellBase = CellBase

--- CellBase(mode, fname, input_size, hidden_size, opts): see nn.LSTMCell.
function CellBase:init(mode, fname, input_size, hidden_size, opts)
  local known = {bias = true, dtype = true, nonlinearity = fname == "RNNCell" or nil}
  input_size = common.check_int(fname, input_size, "input_size", 0, 4)
  hidden_size = common.check_int(fname, hidden_size, "hidden_size", 1, 4)
  opts = common.options(fname, opts, known, 4)
  if opts.nonlinearity ~= nil then
    if opts.nonlinearity ~= "tanh" and opts.nonlinearity ~= "relu" then
      error(("RNNCell: nonlinearity must be 'tanh' or 'relu', got '%s'"):format(
            tostring(opts.nonlinearity)), 4)
    end
    mode = opts.nonlinearity == "relu" and "RNN_RELU" or "RNN_TANH"
  end
  self.mode, self._fname = mode, fname
  self.input_size, self.hidden_size = input_size, hidden_size
  self.bias = common.opt(opts, "bias", true) and true or false
  local dt, G = {dtype = opts.dtype or "float32"}, GATES[mode]
  self:register_parameter("weight_ih", ember.empty(G * hidden_size, input_size, dt))
  self:register_parameter("weight_hh", ember.empty(G * hidden_size, hidden_size, dt))
  if self.bias then
    self:register_parameter("bias_ih", ember.empty(G * hidden_size, dt))
    self:register_parameter("bias_hh", ember.empty(G * hidden_size, dt))
  end
  self:reset_parameters()
end

CellBase.reset_parameters = reset_uniform

function CellBase:_weight_dtype() return self.weight_ih.dtype end

--- cell(x [, hx]) -> h' (LSTMCell: h', c' from hx = {h, c}).
function CellBase:forward(x, hx)
  local fname, lstm = self._fname, self.mode == "LSTM"
  local batched
  x, batched = check_input(self, fname, x, 2, 2)
  local h, c = split_hx(fname, self.mode, hx, 2)
  local shape = {x:size(1), self.hidden_size}
  h = state(fname, h, lstm and "h" or "hx", shape, batched, 1, x, 2)
  if lstm then c = state(fname, c, "c", shape, batched, 1, x, 2) end
  local gx = F.linear(x, self.weight_ih, self.bias_ih)
  h, c = STEP[self.mode](gx, h, c, self.weight_hh:t(), self.bias_hh)
  if not batched then h, c = h:squeeze(1), c and c:squeeze(1) end
  if lstm then return h, c end
  return h
end

function CellBase:extra_repr()
  local s = ("%d, %d"):format(self.input_size, self.hidden_size)
  if self.mode == "RNN_RELU" then s = s .. ", nonlinearity='relu'" end
  if not self.bias then s = s .. ", bias=false" end
  return s
end

--- nn.RNNCell(input_size, hidden_size [, {bias, nonlinearity, dtype}]).
local RNNCell = CellBase:extend("RNNCell")
M.RNNCell = RNNCell
function RNNCell:init(input_size, hidden_size, opts)
  CellBase.init(self, "RNN_TANH", "RNNCell", input_size, hidden_size, opts)
end

--- nn.LSTMCell(input_size, hidden_size [, {bias, dtype}]).
local LSTMCell = CellBase:extend("LSTMCell")
M.LSTMCell = LSTMCell
function LSTMCell:init(input_size, hidden_size, opts)
  CellBase.init(self, "LSTM", "LSTMCell", input_size, hidden_size, opts)
end

--- nn.GRUCell(input_size, hidden_size [, {bias, dtype}]).
local GRUCell = CellBase:extend("GRUCell")
M.GRUCell = GRUCell
function GRUCell:init(input_size, hidden_size, opts)
  CellBase.init(self, "GRU", "GRUCell", input_size, hidden_size, opts)
end

-- }======================================================================

return M
