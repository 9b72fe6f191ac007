-- The common mistakes get the fix in the message: integer or float64
-- inputs into a float32 model, 0-based class labels, class indices given
-- to categorical_crossentropy, misspelled options.  And a failed call
-- changes nothing.
local ember = require "ember"
local nn = ember.nn
local F = nn.functional
local H = require "nn.helper"
local check = require "ember.check"

local function long(t) return ember.tensor(t, {dtype = "int64"}) end

describe("a layer's input", function()
  local function fix64(what)
    return ("expected float32 %s like the weights, got float64; convert it with :float() " ..
            "or the model with :double()"):format(what or "input")
  end
  local function bytes(what)
    return ("got uint8 %s but the weights are float32; convert with :float() / 255 " ..
            "(for 0..255 image bytes) or :float()"):format(what or "input")
  end
  local layers = {
    {"Linear", function() return nn.Linear(3, 2) end, {2, 3}},
    {"Conv2d", function() return nn.Conv2d(1, 2, 3) end, {1, 1, 5, 5}},
    {"RNN", function() return nn.RNN(3, 2) end, {1, 2, 3}},
    {"LSTM", function() return nn.LSTM(3, 2) end, {1, 2, 3}},
    {"GRUCell", function() return nn.GRUCell(3, 2) end, {2, 3}},
    {"TransformerEncoderLayer", function() return nn.TransformerEncoderLayer(4, 2) end, {1, 2, 4},
     "input (src)"},
  }
  for _, c in ipairs(layers) do
    it(c[1] .. " refuses image bytes and names the conversion", function()
      H.fails(c[1] .. ": " .. bytes(c[4]), c[2](), ember.ones(c[3], {dtype = "uint8"}))
    end)
    it(c[1] .. " refuses int64 input", function()
      H.fails(c[1] .. (": got int64 %s but the weights are float32; convert with :float()")
              :format(c[4] or "input"),
              c[2](), ember.ones(c[3], {dtype = "int64"}))
    end)
    it(c[1] .. " refuses float64 input into a float32 model (as PyTorch), not promoting", function()
      H.fails(c[1] .. ": " .. fix64(c[4]), c[2](), ember.ones(c[3], {dtype = "float64"}))
    end)
  end

  it("a float64 model says how to go back to float32", function()
    H.fails("Linear: expected float64 input like the weights, got float32; convert it with " ..
            ":double() or the model with :float()", nn.Linear(3, 2):double(), ember.ones(2, 3))
  end)

  it("the query of an attention layer", function()
    local m, x = nn.MultiheadAttention(4, 2), ember.ones(1, 2, 4)
    H.fails("MultiheadAttention: expected float32 query like the weights, got float64", m,
            x:double(), x, x)
    H.fails("MultiheadAttention: got int64 key but the weights are float32", m,
            x, x:long(), x)
  end)

  it("Sequential's fused Conv2d + ReLU checks too", function()
    local m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    H.fails("Conv2d: " .. bytes(), m, ember.ones({1, 1, 5, 5}, {dtype = "uint8"}))
  end)

  it("the right dtype still runs, the raw ops are unchanged", function()
    assert.are.same({2, 2}, nn.Linear(3, 2)(ember.ones(2, 3)):shape())
    assert.are.same({2, 2}, nn.Linear(3, 2):double()(ember.ones(2, 3):double()):shape())
  end)
end)

describe("0-based class labels", function()
  local x = ember.zeros(3, 4)
  local fix = "class labels are 1..4 in Ember (got 0); add 1 to PyTorch-style (0-based) labels"
  it("cross_entropy, nll_loss and their modules say to add 1", function()
    H.fails("cross_entropy: " .. fix, F.cross_entropy, x, long{0, 1, 3})
    H.fails("nll_loss: " .. fix, F.nll_loss, x, long{1, 0, 3})
    H.fails("cross_entropy: " .. fix, nn.CrossEntropyLoss(), x, long{0, 1, 2})
    H.fails("nll_loss: " .. fix, nn.NLLLoss(), x, long{0, 1, 2})
  end)
  it("a label past C is reported as before, even beside a 0", function()
    H.fails("cross_entropy: target 5 is out of range for 4 classes", F.cross_entropy, x,
            long{0, 5, 1})
  end)
  it("0 as the ignore_index is no mistake", function()
    local l = F.cross_entropy(x, long{0, 1, 2}, {ignore_index = 0})
    assert.is_true(math.abs(l:item() - math.log(4)) < 1e-6)
  end)
  it("fit with sparse_categorical_crossentropy says it too", function()
    local m = nn.Sequential(nn.Linear(3, 4))
    m:compile{optimizer = "sgd", loss = "sparse_categorical_crossentropy"}
    H.fails("cross_entropy: " .. fix, m.fit, m, ember.zeros(3, 3), long{0, 1, 3}, {verbose = 0})
  end)
end)

describe("categorical_crossentropy", function()
  local function model(last)
    local m = last and nn.Sequential(nn.Linear(3, 4), last) or nn.Sequential(nn.Linear(3, 4))
    return m:compile{optimizer = "sgd", loss = "categorical_crossentropy"}
  end
  it("refuses class indices, pointing at the sparse loss", function()
    for _, last in ipairs({false, nn.Softmax(2), nn.LogSoftmax(2)}) do
      local m = model(last or nil)
      local before = m[1].weight:clone()
      H.fails("categorical_crossentropy: expected one-hot (or probability) targets of the " ..
              "output's shape [4,4], got int64 targets of shape [4]; for class indices use " ..
              "loss = 'sparse_categorical_crossentropy'", m.fit, m, ember.zeros(4, 3),
              long{1, 2, 3, 4}, {verbose = 0})
      assert.is_true(m[1].weight:equal(before))
    end
  end)
  it("takes one-hot targets", function()
    local m = model()
    local y = F.one_hot(long{1, 2, 3, 4}, 4):float()
    local h = m:fit(ember.zeros(4, 3), y, {verbose = 0})
    assert.are.equal(1, #h.history.loss)
  end)
end)

describe("misspelled options", function()
  it("check.suggest finds the near name, or nothing", function()
    assert.are.equal("lr", check.suggest("lt", {"lr", "momentum"}))
    assert.are.equal("epochs", check.suggest("epoch", {"batch_size", "epochs"}))
    assert.are.equal("batch_size", check.suggest("batchsize", {"batch_size", "epochs"}))
    assert.are.equal("bucket_mb", check.suggest("bucket", {"bucket_mb", "broadcast_buffers"}))
    assert.are.equal("weight_decay", check.suggest("weight", {"lr", "weight_decay"}))
    assert.is_nil(check.suggest("x", {"lr", "eps"}))
    assert.is_nil(check.suggest("learning_rate", {"lr", "momentum"}))
    assert.is_nil(check.suggest(1, {"lr"}))
  end)
  it("Lua-side options checks say 'did you mean'", function()
    H.fails("SGD: unknown option 'lt'; did you mean 'lr'?", ember.optim.SGD, {}, {lt = 0.1})
    H.fails("Linear: unknown option 'bais'; did you mean 'bias'?", nn.Linear, 2, 3, {bais = false})
  end)
  it("C-side options checks say it too", function()
    H.fails("sort: unknown option 'descendin'; did you mean 'descending'?", ember.sort,
            ember.zeros(3), {descendin = true})
    H.fails("nonzero: unknown option 'astuple'; did you mean 'as_tuple'?", ember.nonzero,
            ember.zeros(3), {astuple = true})
  end)
  it("a far name gets no guess", function()
    local e = H.fails("topk: unknown option 'x'", ember.topk, ember.zeros(3), 1, {x = true})
    assert.is_nil(e:find("did you mean", 1, true))
  end)
end)
