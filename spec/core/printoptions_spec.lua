-- ember.set_printoptions: its errors, and a failed call changes nothing.
local ember = require "ember"

describe("set_printoptions", function()
  it("names itself when given something other than a table", function()
    assert.has_error(function() ember.set_printoptions(5) end,
                     "set_printoptions: expected a table of options, got number")
  end)

  it("changes nothing when one of the options is bad", function()
    local t = ember.tensor({1.23456})
    local before = tostring(t)
    assert.has_error(function() ember.set_printoptions{precision = 1, linewidth = -1} end,
                     "set_printoptions: linewidth must be a non-negative integer")
    assert.are.equal(before, tostring(t))
    ember.set_printoptions{precision = 2}
    assert.are_not.equal(before, tostring(t))
    ember.set_printoptions{precision = 4}
    assert.are.equal(before, tostring(t))
  end)
end)
