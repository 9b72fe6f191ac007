-- Bool-mask keys: t[mask] (a 1-d copy, masked_select), t[mask] = number
-- (masked_fill_) and t[mask] = tensor (masked_scatter_).  The bindings
-- dispatch a bool key to those methods by name (bindings/lua_tensor.c,
-- mask_call); masked_select and masked_scatter_ come from another branch,
-- so the read and scatter cases fail until it is merged.
local ember = require "ember"

describe("bool mask keys", function()
  local function t() return ember.tensor({{1, 2, 3}, {4, 5, 6}}) end

  it("t[mask] = number fills (masked_fill_)", function()
    local x = t()
    x[x:gt(3)] = 0
    assert.are.same({{1, 2, 3}, {0, 0, 0}}, x:totable())
  end)

  it("t[mask] = 0-d tensor fills", function()
    local x = t()
    x[x:lt(3)] = ember.tensor(-1)
    assert.are.same({{-1, -1, 3}, {4, 5, 6}}, x:totable())
  end)

  it("t[mask] reads the selected elements as a 1-d copy (masked_select)", function()
    local x = t()
    local s = x[x:gt(2)]
    assert.are.same({3, 4, 5, 6}, s:totable())
    s:fill_(0)
    assert.are.equal(21, x:sum():item())
  end)

  it("t[mask] = tensor scatters the source in order (masked_scatter_)", function()
    local x = t()
    x[x:gt(4)] = ember.tensor({10, 20})
    assert.are.same({{1, 2, 3}, {4, 10, 20}}, x:totable())
  end)

  it("a bool tensor inside a table key is refused", function()
    local x = t()
    assert.has_error(function() return x[{x:gt(1)}] end,
      "index: entry 1 is a bool tensor; a mask must be the whole key (t[mask])")
  end)
end)
