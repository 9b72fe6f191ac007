-- Every loss, functional and module, every reduction and option, against
-- PyTorch reference values; with autograd, the gradients w.r.t. the input.
local ember = require "ember"
local nn = ember.nn
local F = nn.functional
local H = require "nn.helper"
local ref, T, close = H.ref, H.T, H.close

--- name -> {functional, module class, options builder, target field}
local CASES = {
  ce = {F.cross_entropy, nn.CrossEntropyLoss},
  ce_weight = {F.cross_entropy, nn.CrossEntropyLoss},
  ce_ignore = {F.cross_entropy, nn.CrossEntropyLoss},
  ce_weight_ignore = {F.cross_entropy, nn.CrossEntropyLoss},
  ce_smooth = {F.cross_entropy, nn.CrossEntropyLoss},
  ce_smooth_weight_ignore = {F.cross_entropy, nn.CrossEntropyLoss},
  ce_ignore_class = {F.cross_entropy, nn.CrossEntropyLoss},
  ce_kdim = {F.cross_entropy, nn.CrossEntropyLoss},
  ce_unbatched = {F.cross_entropy, nn.CrossEntropyLoss},
  ce_probs = {F.cross_entropy, nn.CrossEntropyLoss},
  ce_probs_smooth_weight = {F.cross_entropy, nn.CrossEntropyLoss},
  nll = {F.nll_loss, nn.NLLLoss},
  nll_weight_ignore = {F.nll_loss, nn.NLLLoss},
  mse = {F.mse_loss, nn.MSELoss},
  l1 = {F.l1_loss, nn.L1Loss},
  smooth_l1 = {F.smooth_l1_loss, nn.SmoothL1Loss},
  smooth_l1_b05 = {F.smooth_l1_loss, nn.SmoothL1Loss},
  smooth_l1_b0 = {F.smooth_l1_loss, nn.SmoothL1Loss},
  bce = {F.binary_cross_entropy, nn.BCELoss},
  bce_weight = {F.binary_cross_entropy, nn.BCELoss},
  bce_logits = {F.binary_cross_entropy_with_logits, nn.BCEWithLogitsLoss},
  bce_logits_weight_pos = {F.binary_cross_entropy_with_logits, nn.BCEWithLogitsLoss},
}

local function sorted(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

--- The options of a case (tensors converted to dtype).
local function options(c, reduction, dt)
  local o = {reduction = reduction}
  for _, k in ipairs{"weight", "pos_weight"} do
    if c[k] then o[k] = T(c[k], dt) end
  end
  for _, k in ipairs{"ignore_index", "label_smoothing", "beta"} do o[k] = c[k] end
  return o
end

local function target(c, dt)
  local t = c.target or c.y
  return T(t, dt)
end

describe("losses against PyTorch", function()
  for _, name in ipairs(sorted(CASES)) do
    local c, fn, class = ref[name], CASES[name][1], CASES[name][2]
    for _, red in ipairs{"none", "mean", "sum"} do
      for _, dt in ipairs(H.DTYPES) do
        it(("%s reduction=%s (%s)"):format(name, red, dt), function()
          local x = H.leaf(c.x, dt)
          local out = fn(x, target(c, dt), options(c, red, dt))
          close(out, c[red].out, name .. " " .. red)
          -- the module form gives the same
          local m = class(options(c, red, dt))
          close(m(T(c.x, dt), target(c, dt)), c[red].out, name .. " module " .. red)
          H.backward(out, c[red].R)
          close(x.grad, c[red].gx, name .. " " .. red .. " grad input")
        end)
      end
    end
  end

  it("binary_cross_entropy clamps its logs at -100", function()
    local c = ref.bce_clamp
    for _, dt in ipairs(H.DTYPES) do
      close(F.binary_cross_entropy(T(c.x, dt), T(c.y, dt), {reduction = "none"}), c.out,
            "bce clamp")
    end
  end)

  it("cross_entropy is stable for large logits", function()
    local x = ember.tensor({{1000, 0}, {-1000, 1000}})
    local y = ember.tensor({1, 1}, {dtype = "int64"})
    local l = F.cross_entropy(x, y, {reduction = "none"})
    assert.are.equal(0.0, l[1])
    assert.are.equal(2000.0, l[2])
    local big = F.binary_cross_entropy_with_logits(ember.tensor({100, -100}),
                                                   ember.tensor({0, 1}), {reduction = "sum"})
    assert.are.equal(200.0, big:item())
  end)

  it("mean over only ignored targets is nan, as PyTorch", function()
    local l = F.cross_entropy(ember.zeros(2, 3), ember.tensor({-100, -100}, {dtype = "int64"}))
    assert.is_true(l:item() ~= l:item())
  end)
end)

describe("loss modules", function()
  it("hold class weights as buffers and print", function()
    local m = nn.CrossEntropyLoss({weight = ember.ones(3), reduction = "sum"})
    assert.is_truthy(m:state_dict().weight)
    assert.are.equal(0, #m:parameters())
    assert.are.equal("CrossEntropyLoss(reduction='sum')", tostring(m))
    assert.are.equal("MSELoss()", tostring(nn.MSELoss()))
  end)
end)

describe("loss errors", function()
  local x = ember.zeros(3, 4)
  local y = ember.tensor({1, 2, 4}, {dtype = "int64"})
  it("class index out of range", function()
    H.fails("cross_entropy: target 5 is out of range for 4 classes (expected 1..4 or " ..
            "ignore_index -100)", F.cross_entropy, x, ember.tensor({1, 5, 2}, {dtype = "int64"}))
    H.fails("cross_entropy: class labels are 1..4 in Ember (got 0); add 1 to PyTorch-style " ..
            "(0-based) labels", F.cross_entropy, x, ember.tensor({0, 1, 2}, {dtype = "int64"}))
    H.fails("nll_loss: target 7 is out of range for 4 classes", nn.NLLLoss(), x,
            ember.tensor({7, 1, 2}, {dtype = "int64"}))
  end)
  it("target of the wrong dtype or shape", function()
    H.fails("cross_entropy: expected int64 class indices of shape [3] or class probabilities " ..
            "of shape [3,4], got a float32 target of shape [3]", F.cross_entropy, x,
            ember.tensor({1, 2, 3}))
    H.fails("cross_entropy: expected a target of shape [3] for input shape [3,4], got [2]",
            F.cross_entropy, x, ember.tensor({1, 2}, {dtype = "int64"}))
    H.fails("nll_loss: expected int64 class indices of shape [3], got a float32 target of " ..
            "shape [3,4]", F.nll_loss, x, ember.zeros(3, 4))
    H.fails("mse_loss: input shape [3,4] and target shape [4] differ", F.mse_loss, x,
            ember.zeros(4))
    H.fails("l1_loss: expected a floating tensor for the target, got int64", F.l1_loss,
            ember.zeros(3), y)
  end)
  it("bad options", function()
    H.fails("cross_entropy: reduction must be 'none', 'mean' or 'sum', got 'avg'",
            F.cross_entropy, x, y, {reduction = "avg"})
    H.fails("cross_entropy: weight must have shape [4] (one per class), got [3]",
            F.cross_entropy, x, y, {weight = ember.ones(3)})
    H.fails("CrossEntropyLoss: unknown option 'weights'", nn.CrossEntropyLoss, {weights = 1})
    H.fails("nll_loss: unknown option 'label_smoothing'", F.nll_loss, x, y,
            {label_smoothing = 0.1})
    H.fails("cross_entropy: label_smoothing must be in [0, 1], got 2", F.cross_entropy, x, y,
            {label_smoothing = 2})
    H.fails("smooth_l1_loss: beta must be in [0, inf], got -1", F.smooth_l1_loss, x, x,
            {beta = -1})
    H.fails("binary_cross_entropy_with_logits: pos_weight shape [3] does not broadcast to " ..
            "the input shape [3,4]", F.binary_cross_entropy_with_logits, x, x,
            {pos_weight = ember.ones(3)})
  end)
  it("probabilities outside [0, 1] for binary_cross_entropy", function()
    H.fails("binary_cross_entropy: all elements of the input should be between 0 and 1",
            F.binary_cross_entropy, ember.tensor({1.5}), ember.tensor({1}))
  end)
  it("a 0-d input", function()
    H.fails("cross_entropy: expected an input of shape [C], [N,C] or [N,C,d1,...]",
            F.cross_entropy, ember.tensor(1), ember.tensor(1, {dtype = "int64"}))
  end)
end)
