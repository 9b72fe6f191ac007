-- The logic group of issue 17: any, all, isnan, isinf, isfinite,
-- logical_and, logical_or, logical_xor, logical_not (lua/ember/logic.lua).
--
-- Reference values from PyTorch live in spec/reference/logic_values.lua,
-- written by spec/reference/make_logic_reference.py (needs PyTorch only to
-- regenerate).  Every dtype, zeros, -0.0, NaN and +-inf, transposed
-- (non-contiguous) inputs, empty and 0-d tensors, every dim (positive and
-- negative, with and without keepdim), broadcasting and mixed dtypes.
-- The results are bool, so they must match exactly; each case runs as the
-- function ember.op(...) and as the method t:op(...).
local ember = require "ember"

local cases = dofile("spec/reference/logic_values.lua")

local function build(input)
  local t = ember.tensor(input.data, {dtype = input.dtype}):view(input.shape)
  if input.transpose then
    t = t:transpose(input.transpose[1], input.transpose[2])
  end
  return t
end

local function flat(t)
  if t:dim() == 0 then return {t:item()} end
  return t:reshape(-1):totable()
end

local function call(op, form, ins, args)
  local a = {}
  if args and args.dim then
    a[1] = args.dim
    if args.keepdim then a[2] = {keepdim = true} end
  end
  if form == "method" then
    if ins[2] then return ins[1][op](ins[1], ins[2]) end
    return ins[1][op](ins[1], table.unpack(a))
  end
  if ins[2] then return ember[op](ins[1], ins[2]) end
  return ember[op](ins[1], table.unpack(a))
end

local function check(c, r)
  assert.is_true(ember.is_tensor(r))
  assert.equal("bool", r.dtype)
  assert.same(c.expected.shape, r:shape())
  assert.same(c.expected.data, flat(r))
end

describe("logic ops against PyTorch", function()
  for _, c in ipairs(cases) do
    it(c.name, function()
      local ins = {}
      for i, x in ipairs(c.inputs) do ins[i] = build(x) end
      check(c, call(c.op, "function", ins, c.args))
      check(c, call(c.op, "method", ins, c.args))
    end)
  end
end)

describe("logic ops", function()
  it("take keepdim as a boolean or in an options table", function()
    local t = ember.tensor{{1, 0}, {1, 1}}
    assert.same({{false}, {true}}, t:all(2, true):totable())
    assert.same({{false}, {true}}, t:all(2, {keepdim = true}):totable())
    assert.same({true, true}, t:any(-1, {keepdim = false}):totable())
    assert.same({true, false}, ember.all(t, 1):totable())
    assert.equal(0, t:any():dim())
  end)

  it("reduce an empty tensor as PyTorch: any false, all true", function()
    local e = ember.zeros(0, 4)
    assert.is_false(e:any():item())
    assert.is_true(e:all():item())
    assert.same({false, false, false, false}, e:any(1):totable())
    assert.same({0}, e:all(2):shape())
  end)

  it("count NaN as true and -0.0 as false", function()
    local t = ember.tensor{0 / 0, -0.0}
    assert.same({true, false}, t:logical_not():logical_not():totable())
    assert.is_true(t:select(1, 1):all():item())
    assert.is_false(t:select(1, 2):any():item())
  end)

  it("give integers and bools no NaN and no infinity", function()
    for _, dt in ipairs{"int32", "int64", "uint8", "bool"} do
      local t = ember.tensor({1, 0, 1}, {dtype = dt})
      assert.same({false, false, false}, t:isnan():totable())
      assert.same({false, false, false}, t:isinf():totable())
      assert.same({true, true, true}, t:isfinite():totable())
    end
  end)

  it("leave their inputs as they were", function()
    local a = ember.tensor{{1, 0 / 0}, {0, 2}}
    local b = ember.tensor{1, 0}
    local before_a, before_b = a:clone(), b:clone()
    a:any(1); a:all(); a:isnan(); a:isinf(); a:isfinite(); a:logical_not()
    a:logical_and(b); a:logical_or(b); a:logical_xor(b)
    assert.same(before_b:totable(), b:totable())
    assert.same(flat(before_a:isnan()), flat(a:isnan()))
    assert.same({1, 0, 2}, {a[1][1], a[2][1], a[2][2]})
  end)

  it("are not differentiable: a bool result that does not require grad", function()
    local x = ember.tensor({{1.5, 0}, {0 / 0, 1 / 0}}, {requires_grad = true})
    local y = ember.tensor({1, 0}, {requires_grad = true})
    local rs = {x:any(), x:all(1), x:isnan(), x:isinf(), x:isfinite(),
                x:logical_not(), x:logical_and(y), x:logical_or(y),
                x:logical_xor(y)}
    for _, r in ipairs(rs) do
      assert.equal("bool", r.dtype)
      assert.is_false(r.requires_grad)
    end
    -- a mask from them still steers a differentiable op
    local loss = ember.where(x:isfinite(), x, ember.zeros(2, 2)):sum()
    loss:backward()
    assert.same({{1, 1}, {0, 0}}, x.grad:totable())
  end)

  it("work under no_grad", function()
    local x = ember.randn(3, {requires_grad = true})
    local r = ember.no_grad(function() return x:isfinite():all() end)
    assert.is_true(r:item())
  end)
end)

describe("logic op errors name the function", function()
  local t = ember.ones(2, 3)
  local function err(pat, f, ...)
    local ok, msg = pcall(f, ...)
    assert.is_false(ok)
    -- blamed on the caller's line (here, the pcall's), then the message
    assert.matches("^spec/core/logic_spec.lua:%d+: ", tostring(msg))
    assert.matches(pat, (tostring(msg):gsub("^[^:]*:%d+: ", "")))
  end

  it("for a missing or non-tensor argument", function()
    for _, op in ipairs{"any", "all", "isnan", "isinf", "isfinite", "logical_not"} do
      err("^" .. op .. ": expected a tensor as argument 1, got nil", ember[op])
      err("^" .. op .. ": expected a tensor as argument 1, got number", ember[op], 3)
    end
    for _, op in ipairs{"logical_and", "logical_or", "logical_xor"} do
      err("^" .. op .. ": expected a tensor as argument 2, got number", ember[op], t, 1)
      err("^" .. op .. ": expected a tensor as argument 1, got string", ember[op], "x", t)
    end
  end)

  it("for a dim out of range, 0 or not an integer", function()
    for _, op in ipairs{"any", "all"} do
      err("^" .. op .. ": dimension 3 out of range for a 2%-d tensor %(expected 1%.%.2%)",
          ember[op], t, 3)
      err("^" .. op .. ": dimension %-3 out of range", ember[op], t, -3)
      err("^" .. op .. ": dimension 0 is invalid %(dimensions count from 1%)", ember[op], t, 0)
      err("^" .. op .. ": dimension must be an integer, got 1%.5", ember[op], t, 1.5)
      err("^" .. op .. ": dimension must be an integer, got string", ember[op], t, "1")
      err("^" .. op .. ": dimension 2 out of range for a 0%-d tensor", ember[op], ember.tensor(1), 2)
    end
  end)

  it("for bad options", function()
    err("^any: unknown option 'keep' %(expected keepdim%)", ember.any, t, 1, {keep = true})
    err("^all: keepdim must be a boolean, got number", ember.all, t, 1, 1)
    err("^any: keepdim needs a dimension", ember.any, t, {keepdim = true})
    err("^all: expected an options table, got string", ember.all, t, 1, true, "x")
  end)

  it("for shapes that do not broadcast", function()
    err("^logical_and: shapes %[2,3%] and %[4%] cannot be broadcast %(dimension 2: 3 vs 4%)",
        ember.logical_and, t, ember.ones(4))
    err("^logical_xor: shapes %[2,3%] and %[3,3%] cannot be broadcast %(dimension 1: 2 vs 3%)",
        t.logical_xor, t, ember.ones(3, 3))
    -- the error is raised where the user called, not inside the library
    local ok, msg = pcall(function() local r = t:logical_or(ember.ones(5)); return r end)
    assert.is_false(ok)
    assert.matches("logic_spec%.lua:%d+: logical_or:", msg)
  end)
end)
