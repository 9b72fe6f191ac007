-- A shape too large to count names the function that was called (found by
-- the Lua fuzzer: zeros, eye and linspace used to blame `empty`), and the
-- sizes that do fit still work.
local ember = require "ember"

describe("shapes whose element count overflows", function()
  it("are the caller's error", function()
    local big = 2 ^ 31
    for _, case in ipairs{
      {"zeros", function() return ember.zeros(big, big, big) end},
      {"ones", function() return ember.ones({2 ^ 40, 2 ^ 40}) end},
      {"empty", function() return ember.empty(2 ^ 62, 4) end},
      {"full", function() return ember.full({2 ^ 40, 2 ^ 40}, 1) end},
      {"eye", function() return ember.eye(2 ^ 40) end},
      {"linspace", function() return ember.linspace(0, 1, 2 ^ 62) end},
    } do
      local ok, err = pcall(case[2])
      assert.is_false(ok, case[1])
      assert.is_truthy(tostring(err):find(case[1], 1, true), tostring(err))
      assert.is_truthy(tostring(err):find("shape is too large", 1, true), tostring(err))
    end
  end)

  it("are an error of view and reshape of an empty tensor too", function()
    local e = ember.empty(2, 0, 3, {dtype = "float64"})
    for _, fn in ipairs{"reshape", "view"} do
      local ok, err = pcall(e[fn], e, {0, math.maxinteger, 3, 1})
      assert.is_false(ok, fn)
      assert.is_truthy(tostring(err):find(fn .. ": shape is too large", 1, true), tostring(err))
      assert.are.same({2, 0, 3}, e:size())
    end
    assert.are.same({0, 2 ^ 20, 2 ^ 20}, e:reshape(0, 2 ^ 20, 2 ^ 20):size())
  end)

  it("leave shapes that fit alone, zero-sized ones included", function()
    assert.are.same({0, 1048576, 1048576}, ember.zeros(0, 2 ^ 20, 2 ^ 20):size())
    assert.are.same({3, 3}, ember.eye(3):size())
    assert.are.equal(5, ember.linspace(0, 1, 5):size(1))
  end)
end)
