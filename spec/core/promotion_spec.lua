-- Details of PyTorch's result-type rules and scalar range checks.
local ember = require "ember"

describe("result types", function()
  it("a 0-d tensor does not widen a dimensioned tensor of its category", function()
    local i32 = ember.tensor({1, 2}, {dtype = "int32"})
    assert.are.equal("int32", (i32 + ember.tensor(1, {dtype = "int64"})).dtype)
    assert.are.equal("float32", (ember.ones(2) + ember.tensor(1, {dtype = "float64"})).dtype)
    assert.are.equal("float64", (i32 + ember.tensor(1.5, {dtype = "float64"})).dtype)
    assert.are.equal("int64", (ember.tensor(1, {dtype = "int32"}) + ember.tensor(1, {dtype = "int64"})).dtype)
    assert.are.equal("bool", i32:lt(ember.tensor(1.5, {dtype = "float64"})).dtype)
  end)

  it("where with two numbers follows their kind", function()
    local c = ember.tensor({true, false})
    assert.are.equal("int64", ember.where(c, 1, 0).dtype)
    assert.are.equal("float32", ember.where(c, 1.5, 0).dtype)
    assert.are.same({1, 0}, ember.where(c, 1, 0):totable())
  end)

  it("numbers that do not fit an integer dtype are errors", function()
    local u8 = ember.tensor({1}, {dtype = "uint8"})
    assert.has_error(function() return u8 + 1000 end,
                     "value 1000 cannot be converted to uint8 without overflow")
    assert.has_error(function() return ember.tensor({1}, {dtype = "int32"}) + (1 << 40) end)
    assert.has_error(function() return ember.tensor({300}, {dtype = "uint8"}) end)
    assert.are.equal(255, (u8 + 254)[1])
  end)

  it("clamping integers to fractional bounds gives float32", function()
    local t = ember.tensor({-3, 0, 3}, {dtype = "int64"})
    local c = t:clamp(-1.5, 1.5)
    assert.are.equal("float32", c.dtype)
    assert.are.same({-1.5, 0, 1.5}, c:totable())
    assert.are.equal("int64", t:clamp(-1, 1).dtype)
  end)

  it("a table of booleans may not hold numbers", function()
    assert.has_error(function() return ember.tensor({true, 1}) end)
    assert.are.same({true, false}, ember.tensor({1, 0}, {dtype = "bool"}):totable())
  end)
end)

describe("smaller fixes", function()
  it("copy refuses to write several values into an expanded view", function()
    local e = ember.zeros(2, 1):expand(2, 3)
    assert.has_error(function() e:copy(ember.ones(2, 3)) end)
  end)

  it("prints a closed tensor", function()
    local keep
    do local t <close> = ember.ones(1); keep = t end
    assert.are.equal("tensor(closed)", tostring(keep))
  end)

  it("names the tensor's own rank in unsqueeze errors", function()
    assert.has_error(function() ember.zeros(3):unsqueeze(3) end,
      "unsqueeze: dimension 3 out of range for a 1-d tensor (expected 1..2)")
  end)

  it("blames the options table for a bad dtype", function()
    local ok, err = pcall(ember.zeros, 2, {dtype = "quarter"})
    assert.is_false(ok)
    assert.truthy(err:find("bad argument #2 to 'ember.zeros'", 1, true), err)
  end)

  it("ember.cuda is a table and the module form of t:cuda()", function()
    assert.is_false(ember.cuda.is_available())
    assert.has_error(function() ember.cuda(ember.ones(1)) end)
  end)
end)
