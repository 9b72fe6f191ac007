-- Tied parameters (m[2].weight = m[1].weight, as a language model ties its
-- embedding and output weights) stay one tensor through every conversion
-- and through save and load: converting each place separately would make
-- two tensors, and training would silently change (the parameter count
-- would go from 3 to 4 here, and the two would drift apart).  The device
-- conversions are spec/cuda/tied_spec.lua (a GPU, or the stand-in).
local ember = require "ember"
local nn = ember.nn
local run = require "helpers.run"

local function tied()
  ember.manual_seed(1)
  local m = nn.Sequential{nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3)}
  m[3].weight = m[1].weight
  return m
end

local function assert_tied(m, what)
  assert.are.equal(3, #m:parameters(), what .. ": parameter count")
  assert.is_true(rawequal(m[1].weight, m[3].weight), what .. ": the weights are one tensor")
end

describe("tied parameters", function()
  it("are counted once", function()
    assert_tied(tied(), "built")
  end)

  for _, conv in ipairs{"double", "float", "cpu"} do
    it("stay tied through :" .. conv .. "()", function()
      local m = tied()
      if conv == "float" then m:double() end
      local before = m[1].weight:clone()
      m[conv](m)
      assert_tied(m, conv)
      assert.is_true(m[1].weight:to("float64"):equal(before:to("float64")), conv .. ": values kept")
    end)
  end

  it("stay tied through :to(dtype)", function()
    local m = tied():to("float64")
    assert_tied(m, "to(float64)")
    assert.are.equal("float64", m[3].weight.dtype)
  end)

  it("train as one tensor after a conversion", function()
    local m = tied():double()
    m:compile{optimizer = "sgd", loss = "mse"}
    local x, y = ember.randn(8, 3):double(), ember.randn(8, 3):double()
    m:fit(x, y, {epochs = 2, batch_size = 4, verbose = 0})
    assert_tied(m, "after fit")
  end)

  it("stay tied through save and nn.load, with the optimizer's state", function()
    local m = tied():double()
    m:compile{optimizer = "adam", loss = "mse"}
    local x, y = ember.randn(8, 3):double(), ember.randn(8, 3):double()
    m:fit(x, y, {epochs = 1, verbose = 0})
    local dir = run.tmpdir()
    local path = dir .. "/tied.safetensors"
    m:save(path)
    local _, meta = ember.load(path)
    assert.are.equal('{"3.weight":"1.weight"}', meta["ember.ties"])
    local m2 = nn.load(path)
    run.rmdir(dir)
    assert_tied(m2, "loaded")
    assert.is_true(m2[1].weight:equal(m[1].weight))
    assert.are.equal(3, #m2.optimizer:state_dict().param_groups[1].params)
    m2:fit(x, y, {epochs = 1, verbose = 0})
    assert_tied(m2, "loaded, then trained")
  end)

  it("refuse a file whose ties name no tensor of the model, saying so", function()
    local m = tied()
    local dir = run.tmpdir()
    local path = dir .. "/bad.safetensors"
    m:save(path)
    local tensors, meta = ember.load(path)
    meta["ember.ties"] = '{"3.weight":"9.weight"}'
    ember.save(path, tensors, meta)
    local ok, err = pcall(nn.load, path)
    run.rmdir(dir)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("nn.load: .*tied tensor '3.weight' %-> '9.weight' is not in the model"), err)
  end)
end)
