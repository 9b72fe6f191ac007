-- nn.utils.weight_decay_groups: nanoGPT's rule (decay on tensors of two or
-- more dimensions only) as optimizer parameter groups.
local ember = require "ember"
local nn, optim = ember.nn, ember.optim

describe("nn.utils.weight_decay_groups", function()
  it("decays matmul and embedding weights, not biases or norm weights", function()
    local m = nn.Sequential{nn.Embedding(10, 4), nn.LayerNorm(4), nn.Linear(4, 3)}
    local groups, decay, no_decay = nn.utils.weight_decay_groups(m, 0.1)
    assert.are.equal(2, #groups)
    assert.are.equal(0.1, groups[1].weight_decay)
    assert.are.equal(0, groups[2].weight_decay)
    assert.are.equal(decay, groups[1].params)
    assert.are.equal(no_decay, groups[2].params)
    -- embedding weight, linear weight; layer norm weight and bias, linear bias
    assert.are.equal(2, #decay)
    assert.are.equal(3, #no_decay)
    assert.are.equal(m[1].weight, decay[1])
    assert.are.equal(m[3].weight, decay[2])
    for _, p in ipairs(no_decay) do assert.are.equal(1, p:dim()) end
  end)

  it("feeds AdamW: only the 2-D weights shrink under weight decay", function()
    local m = nn.Linear(3, 2)
    local w0, b0 = m.weight:clone(), m.bias:clone()
    local opt = optim.AdamW(nn.utils.weight_decay_groups(m, 0.5), {lr = 0.1})
    assert.are.equal(2, #opt.param_groups)
    assert.are.equal(0.5, opt.param_groups[1].weight_decay)
    assert.are.equal(0, opt.param_groups[2].weight_decay)
    -- zero gradients: AdamW's update is then the decay alone
    m.weight.grad, m.bias.grad = ember.zeros_like(m.weight), ember.zeros_like(m.bias)
    opt:step()
    assert.is_true((m.weight - w0 * (1 - 0.1 * 0.5)):abs():max():item() < 1e-6)
    assert.is_true(m.bias:equal(b0))
  end)

  it("takes a list of tensors; leaves out an empty group and frozen parameters", function()
    local a, b = ember.zeros(3, {requires_grad = true}), ember.zeros(2, 2, {requires_grad = true})
    local groups = nn.utils.weight_decay_groups({a}, 0.1)
    assert.are.equal(1, #groups)
    assert.are.equal(0, groups[1].weight_decay)
    groups = nn.utils.weight_decay_groups({b, a}, 0.1)
    assert.are.same({b}, groups[1].params)
    local m = nn.Linear(2, 2)
    m.bias.requires_grad = false
    groups = nn.utils.weight_decay_groups(m, 0.1)
    assert.are.equal(1, #groups)
    assert.are.equal(m.weight, groups[1].params[1])
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() nn.utils.weight_decay_groups(5, 0.1) end,
      "weight_decay_groups: expected a tensor or a list of tensors, got number")
    assert.has_error(function() nn.utils.weight_decay_groups({}, 0.1) end,
      "weight_decay_groups: no parameters")
    assert.has_error(function() nn.utils.weight_decay_groups(nn.Linear(2, 2), -1) end)
    assert.has_error(function() nn.utils.weight_decay_groups(nn.Linear(2, 2)) end)
  end)
end)
