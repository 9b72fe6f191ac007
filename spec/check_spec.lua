-- ember.check (lua/ember/check.lua): the options and integer checks the
-- Lua library shares.  Each error names the function and the argument,
-- and points at the line of the caller the level names.
local ember = require "ember"
local check = require "ember.check"

local THIS = debug.getinfo(1, "S").short_src

--- The error of fn(...) (which must fail).
local function err(fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return e
end

-- A library function as the library writes one: it checks, then works.
local function lib_loader(opts, level)
  opts = check.options("loader", opts, {batch_size = true, shuffle = true}, level)
  return check.integer("loader", "batch_size", opts.batch_size or 1, 1, level) * 1
end

describe("check.options", function()
  it("returns the table, or {} for nil", function()
    local o = {batch_size = 2}
    assert.are.equal(o, check.options("f", o, {batch_size = true}))
    assert.are.same({}, check.options("f", nil, {batch_size = true}))
  end)

  it("names the function and the unknown option, at the caller's line", function()
    local line
    local e = err(function()
      line = debug.getinfo(1, "l").currentline + 1
      lib_loader({batchsize = 2})
    end)
    assert.are.equal(("%s:%d: loader: unknown option 'batchsize'; did you mean 'batch_size'?"):format(THIS, line), e)
  end)

  it("takes a table of defaults: false is a known value", function()
    assert.are.same({quiet = true}, check.options("f", {quiet = true}, {quiet = false}))
    local e = err(check.options, "f", {loud = true}, {quiet = false}, 0)
    assert.are.equal("f: unknown option 'loud'", e)
  end)

  it("lists the known options when they come as a list", function()
    local e = err(check.options, "DDP", {bucket = 1}, {"bucket_mb", "broadcast_buffers"}, 0)
    assert.are.equal("DDP: unknown option 'bucket'; did you mean 'bucket_mb'? (known: bucket_mb, broadcast_buffers)", e)
    assert.are.same({bucket_mb = 1},
                    check.options("DDP", {bucket_mb = 1}, {"bucket_mb", "broadcast_buffers"}))
  end)

  it("refuses what is not a table, tensors included", function()
    assert.are.equal("f: options must be a table, got number",
                     err(check.options, "f", 3, {}, 0))
    assert.are.equal("f: options must be a table, got tensor",
                     err(check.options, "f", ember.zeros(2), {}, 0))
  end)

  it("raises through a failer function when given one", function()
    local seen
    local e = err(check.options, "f", {x = 1}, {}, function(msg) seen = msg; error("raised", 0) end)
    assert.are.equal("raised", e)
    assert.are.equal("f: unknown option 'x'", seen)
  end)

  it("with a level, blames that frame: 1 is the checking function", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local function checks() check.options("g", {x = 1}, {}, 1) end
    assert.are.equal(("%s:%d: g: unknown option 'x'"):format(THIS, line), err(checks))
  end)
end)

describe("check.defaults", function()
  it("fills the defaults and keeps the given values", function()
    local d = {a = 1, b = false}
    local o = check.defaults("f", {b = true}, d)
    assert.are.same({a = 1, b = true}, o)
    assert.are.same({a = 1, b = false}, d)   -- the defaults are not touched
  end)

  it("blames the caller's line for an unknown option", function()
    local function lib(opts)
      local o = check.defaults("lib", opts, {a = 1})
      return o
    end
    local line = debug.getinfo(1, "l").currentline + 1
    local e = err(function() lib({z = 1}) end)
    assert.are.equal(("%s:%d: lib: unknown option 'z'"):format(THIS, line), e)
  end)
end)

describe("check.integer", function()
  it("returns integers, and floats with an integral value as integers", function()
    assert.are.equal(3, check.integer("f", "n", 3))
    assert.are.equal("integer", math.type(check.integer("f", "n", 3.0)))
  end)

  it("refuses other values, naming the function, the argument and the value", function()
    assert.are.equal("f: n must be an integer, got 2.5", err(check.integer, "f", "n", 2.5, nil, 0))
    assert.are.equal("f: n must be an integer, got a string", err(check.integer, "f", "n", "2", nil, 0))
    assert.are.equal("f: n must be an integer, got nil", err(check.integer, "f", "n", nil, nil, 0))
    assert.are.equal("f: n must be an integer, got inf",
                     err(check.integer, "f", "n", math.huge, nil, 0))
    assert.are.equal("f: argument #2 must be >= 1, got 0",
                     err(check.integer, "f", "argument #2", 0, 1, 0))
  end)

  it("points at the caller's line", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local e = err(function() lib_loader({batch_size = 0}) end)
    assert.are.equal(("%s:%d: loader: batch_size must be >= 1, got 0"):format(THIS, line), e)
  end)
end)

describe("check.boolean", function()
  it("passes booleans and nil, refuses the rest", function()
    assert.is_true(check.boolean("f", "b", true))
    assert.is_nil(check.boolean("f", "b", nil))
    assert.are.equal("f: b must be a boolean, got 1", err(check.boolean, "f", "b", 1, 0))
  end)
end)

describe("the library's option checks", function()
  -- one function per module that uses ember.check: the message names the
  -- function and the option, and the position is this file's line
  local nn, optim, data, callbacks = ember.nn, ember.optim, ember.data, ember.callbacks
  local p = ember.zeros(2):requires_grad_(true)
  local cases = {
    {"loader: unknown option 'bs'", function() data.loader(ember.zeros(4), {bs = 1}) end},
    {"Adam: unknown option 'beta'; did you mean 'betas'?", function() optim.Adam({p}, {beta = 1}) end},
    {"StepLR: unknown option 'gama'; did you mean 'gamma'?", function() optim.StepLR(optim.SGD({p}, {lr = 1}), 2, {gama = 1}) end},
    {"ReduceLROnPlateau: unknown option 'paitence'; did you mean 'patience'?",
     function() optim.ReduceLROnPlateau(optim.SGD({p}, {lr = 1}), {paitence = 1}) end},
    {"Conv2d: unknown option 'strides'; did you mean 'stride'?", function() nn.Conv2d(1, 1, 3, {strides = 2}) end},
    {"nll_loss: unknown option 'label_smoothing'", function()
      nn.F.nll_loss(ember.zeros(2, 3), ember.tensor({1, 2}, {dtype = "int64"}), {label_smoothing = 0.1})
    end},
    {"EarlyStopping: unknown option 'wait'", function() callbacks.EarlyStopping{wait = 1} end},
    {"TerminateOnNaN: unknown option 'baseline'", function() callbacks.TerminateOnNaN{baseline = 1} end},
    {"set_printoptions: unknown option 'foo'", function() ember.set_printoptions{foo = 1} end},
    {"DistributedDataParallel: unknown option 'bucket'; did you mean 'bucket_mb'? (known: bucket_mb, broadcast_buffers)",
     function() nn.DistributedDataParallel(nn.Linear(2, 2), {bucket = 1}) end},
    {"save: unknown option 'compress'", function() nn.Linear(2, 2):save("/nonexistent/x", {compress = 1}) end},
    {"fit: unknown option 'epoch'; did you mean 'epochs'?", function()
      local m = nn.Linear(2, 1):compile{loss = "mse"}
      m:fit(ember.zeros(4, 2), ember.zeros(4, 1), {epoch = 1, verbose = 0})
    end},
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local info = debug.getinfo(c[2], "S")
      local ok, e = pcall(c[2])
      assert.is_false(ok)
      -- the line is the case's own one-line function, or the line of the call in it
      local file, line, msg = tostring(e):match("^(.-):(%d+): (.*)$")
      assert.are.equal(c[1], msg)
      assert.are.equal(THIS, file)
      line = tonumber(line)
      assert.is_true(line >= info.linedefined and line <= info.lastlinedefined,
                     ("line %d outside %d..%d"):format(line, info.linedefined, info.lastlinedefined))
    end)
  end
end)
