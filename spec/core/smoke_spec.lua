local ember = require "ember"
describe("smoke", function()
  it("adds", function()
    assert.are.same({{2, 3}}, (ember.ones(1, 2) + ember.tensor({{1, 2}})):totable())
  end)
end)
