-- nn.RNN, nn.LSTM, nn.GRU and their cells against PyTorch reference values
-- (spec/reference/make_rnn_reference.py): output, final state and the
-- gradients of the input, the initial state and every parameter.
local ember = require "ember"
local nn = ember.nn
local H = require "nn.helper"
local T, close = H.T, H.close
local ref = require "reference.rnn_values"
local gradcheck = require "helpers.gradcheck"

local SEQ = {LSTM = nn.LSTM, GRU = nn.GRU, RNN = nn.RNN}
local CELL = {LSTMCell = nn.LSTMCell, GRUCell = nn.GRUCell, RNNCell = nn.RNNCell}

--- The layer of case c, of dtype dt, with the case's weights loaded.
local function build(c, dt)
  local cls = SEQ[c.kind] or CELL[c.kind]
  local m = cls(c.input_size, c.hidden_size, {num_layers = c.num_layers,
                bidirectional = c.bidirectional, bias = c.bias,
                nonlinearity = c.nonlinearity, dtype = dt})
  local sd, names = {}, {}
  for name, p in pairs(c.params) do sd[name] = T(p, dt) end
  m:load_state_dict(sd)   -- strict: the names and shapes are PyTorch's
  for name in pairs(m:state_dict()) do names[#names + 1] = name end
  return m, #names
end

--- Run case c in dtype dt; check values and gradients.
local function check_case(name, c, dt)
  local m = build(c, dt)
  local x = H.leaf(c.x, dt)
  local h0 = c.h0 and H.leaf(c.h0, dt)
  local c0 = c.c0 and H.leaf(c.c0, dt)
  local hx = h0
  if c.kind:match("^LSTM") and h0 then hx = {h0, c0} end
  local out, hn, cn
  if SEQ[c.kind] then
    out, hn = m(x, hx)
    if c.kind == "LSTM" then hn, cn = hn[1], hn[2] end
  else
    hn, cn = m(x, hx)
  end
  local loss = (hn * T(c.RH, dt)):sum()
  if out then
    close(out, c.out, name .. " output")
    loss = loss + (out * T(c.R, dt)):sum()
  end
  close(hn, c.hn, name .. " h_n")
  if c.cn then
    close(cn, c.cn, name .. " c_n")
    loss = loss + (cn * T(c.RC, dt)):sum()
  end
  loss:backward()
  close(x.grad, c.gx, name .. " grad input")
  if h0 then close(h0.grad, c.gh0, name .. " grad h0") end
  if c0 then close(c0.grad, c.gc0, name .. " grad c0") end
  for pname, g in pairs(c.gparams) do
    close(m[pname].grad, g, name .. " grad " .. pname)
  end
end

local names = {}
for name in pairs(ref) do names[#names + 1] = name end
table.sort(names)

describe("recurrent layers against PyTorch", function()
  for _, name in ipairs(names) do
    for _, dt in ipairs(H.DTYPES) do
      it(name .. " (" .. dt .. ")", function() check_case(name, ref[name], dt) end)
    end
  end
end)

describe("nn.LSTM", function()
  it("names and shapes its parameters as PyTorch, layers 1-based", function()
    local m = nn.LSTM(3, 5, {num_layers = 2, bidirectional = true})
    local got = {}
    for name, p in m:named_parameters() do
      got[#got + 1] = name .. table.concat(p:shape(), "x", 1, p:dim()):gsub("^", ":")
    end
    assert.are.same({"weight_ih_l1:20x3", "weight_hh_l1:20x5", "bias_ih_l1:20", "bias_hh_l1:20",
                     "weight_ih_l1_reverse:20x3", "weight_hh_l1_reverse:20x5",
                     "bias_ih_l1_reverse:20", "bias_hh_l1_reverse:20",
                     "weight_ih_l2:20x10", "weight_hh_l2:20x5", "bias_ih_l2:20", "bias_hh_l2:20",
                     "weight_ih_l2_reverse:20x10", "weight_hh_l2_reverse:20x5",
                     "bias_ih_l2_reverse:20", "bias_hh_l2_reverse:20"}, got)
  end)

  it("initialises every parameter in U(-1/sqrt(H), 1/sqrt(H))", function()
    local m = nn.GRU(4, 16, {num_layers = 2})
    for _, p in ipairs(m:parameters()) do
      assert.is_true(p:abs():max():item() <= 0.25)
      assert.is_true(p:abs():max():item() > 0.2)   -- spread over the range
    end
  end)

  it("starts from zeros without an initial state, and prints as PyTorch", function()
    local m = nn.LSTM(2, 3, {num_layers = 2, dtype = "float64"})
    local x = ember.randn(4, 5, 2, {dtype = "float64"})
    local z = ember.zeros(2, 4, 3, {dtype = "float64"})
    local o1, s1 = m(x)
    local o2, s2 = m(x, {z, z})
    assert.are.equal(0, (o1 - o2):abs():max():item())
    assert.are.equal(0, (s1[2] - s2[2]):abs():max():item())
    assert.are.equal("LSTM(2, 3, num_layers=2)", tostring(m))
    assert.are.equal("RNN(2, 3, nonlinearity='relu', bias=false, dropout=0.5, bidirectional=true)",
                     tostring(nn.RNN(2, 3, {nonlinearity = "relu", bias = false, dropout = 0.5,
                                            bidirectional = true})))
    assert.are.equal("LSTMCell(2, 3)", tostring(nn.LSTMCell(2, 3)))
  end)

  it("handles a batch of 0 and non-contiguous inputs", function()
    local m = nn.GRU(3, 2, {bidirectional = true})
    local out, hn = m(ember.zeros(0, 4, 3))
    assert.are.same({0, 4, 4}, out:shape())
    assert.are.same({2, 0, 2}, hn:shape())
    local x = ember.randn(5, 2, 3):transpose(1, 2)      -- (2, 5, 3), strided
    local a = m(x)
    local b = m(x:contiguous())
    assert.are.equal(0, (a - b):abs():max():item())
  end)

  it("applies dropout between layers in training only", function()
    local m = nn.LSTM(3, 4, {num_layers = 2, dropout = 0.9})
    local x = ember.randn(2, 6, 3)
    m:eval()
    local a, b = m(x), m(x)
    assert.are.equal(0, (a - b):abs():max():item())
    m:train()
    local c = m(x)
    assert.is_true((a - c):abs():max():item() > 0)
    -- a single layer has nothing to drop (as PyTorch)
    local one = nn.LSTM(3, 4, {dropout = 0.9})
    local d, e = one(x), one(x)
    assert.are.equal(0, (d - e):abs():max():item())
  end)

  it("checks its arguments", function()
    H.fails("LSTM: unknown option 'nonlinearity'", nn.LSTM, 2, 3, {nonlinearity = "relu"})
    H.fails("RNN: nonlinearity must be 'tanh' or 'relu', got 'sigmoid'", nn.RNN, 2, 3,
            {nonlinearity = "sigmoid"})
    H.fails("GRU: hidden_size must be >= 1, got 0", nn.GRU, 2, 0)
    H.fails("LSTM: num_layers must be >= 1, got 0", nn.LSTM, 2, 3, {num_layers = 0})
    H.fails("LSTM: dropout must be in [0, 1], got 2", nn.LSTM, 2, 3, {dropout = 2})
    H.fails("LSTM: only batch_first = true is supported", nn.LSTM, 2, 3, {batch_first = false})
    local m = nn.LSTM(2, 3)
    H.fails("LSTM: expected input_size 2 in the last dim of the input, got shape [1,4,3]", m,
            ember.zeros(1, 4, 3))
    H.fails("LSTM: expected a 3-d (batched) or 2-d (unbatched) input, got shape [2]", m,
            ember.zeros(2))
    H.fails("LSTM: expected a sequence length larger than 0", m, ember.zeros(2, 0, 2))
    H.fails("LSTM: expected float32 input like the weights, got float64; convert it with :float() or the model with :double()", m,
            ember.zeros(1, 4, 2, {dtype = "float64"}))
    H.fails("LSTM: the initial state must be a table {h0, c0}, got a tensor", m,
            ember.zeros(1, 4, 2), ember.zeros(1, 1, 3))
    H.fails("LSTM: expected c0 of shape [1,1,3], got [1,2,3]", m, ember.zeros(1, 4, 2),
            {ember.zeros(1, 1, 3), ember.zeros(1, 2, 3)})
    H.fails("GRU: expected hx of shape [1,3], got [2,3]", nn.GRU(2, 3), ember.zeros(4, 2),
            ember.zeros(2, 3))
    H.fails("LSTMCell: expected c of shape [2,3], got [2,4]", nn.LSTMCell(2, 3), ember.zeros(2, 2),
            {ember.zeros(2, 3), ember.zeros(2, 4)})
    H.fails("RNNCell: expected hx of shape [2,3], got [3]", nn.RNNCell(2, 3), ember.zeros(2, 2),
            ember.zeros(3))
  end)

  it("saves and reloads its architecture", function()
    local m = nn.GRU(2, 3, {num_layers = 2, bidirectional = true, dtype = "float64"})
    local copy = nn.from_config(m:get_config())
    assert.are.equal(tostring(m), tostring(copy))
  end)
end)

describe("recurrent layers' gradients (finite differences, float64)", function()
  local function check(mk, state)
    local m = mk()
    local x = ember.randn(2, 3, 2, {dtype = "float64"}):requires_grad_(true)
    local inputs = {x}
    for _, p in ipairs(m:parameters()) do inputs[#inputs + 1] = p end
    gradcheck.check(function()
      local out, hn = m(x, state)
      if type(hn) == "table" then hn = hn[2] end
      return out:sum() + (hn * hn):sum()
    end, inputs)
  end
  for _, kind in ipairs{"LSTM", "GRU", "RNN"} do
    it(kind, function()
      check(function() return SEQ[kind](2, 3, {num_layers = 2, bidirectional = true,
                                               dtype = "float64"}) end)
    end)
  end
end)
