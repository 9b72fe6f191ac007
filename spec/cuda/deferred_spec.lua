-- Data errors found on the GPU (GPU only; CI runs it on the stand-in
-- plugin through spec/bindings/fake_cuda_spec.lua): an index out of range
-- is not raised by the op that meets it but by the next synchronising call
-- (item, cpu, ember.cuda.synchronize), with the CPU's message naming the
-- op, and is then cleared; the first of several bad ops wins.  The checks
-- that replaced host reads (cross_entropy's targets, embedding's indices,
-- clip_grad_norm_'s coefficient) make no synchronisation.
--
-- Without a CUDA device the whole file is one pending test that says why.
local ember = require "ember"
local cuda_helper = require "helpers.cuda"
local nn = ember.nn
local F = nn.functional


-- {======================================================================
-- Helpers
-- =======================================================================

local function long(v) return ember.tensor(v, {dtype = "int64"}) end

--- An error message without the "file:line: " that error() adds.
local function bare(msg)
  return (tostring(msg):gsub("^[^:\n]*:%d+: ", ""))
end

--- The message fn raises on the CPU (it must raise).
local function cpu_error(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected the CPU call to fail")
  return bare(err)
end

--- fn() on the GPU must not raise; the next call of `sync` must raise
-- `want`, and a sync after it must succeed (the error is cleared).
local function deferred(want, fn, sync)
  local ok, err = pcall(fn)
  assert(ok, "the op itself must not raise on cuda, it raised: " .. tostring(err))
  local sok, serr = pcall(sync or ember.cuda.synchronize)
  assert(not sok, "the next sync must raise '" .. want .. "', it raised nothing")
  assert.are.equal(want, bare(serr))
  assert(pcall(ember.cuda.synchronize), "the error must be cleared once reported")
end

local function syncs() return ember.cuda.stats().syncs end

-- }======================================================================

describe("deferred data errors on the GPU", function()
  if not cuda_helper.available() then return end

  before_each(function()
    -- nothing left over from another spec
    assert(pcall(ember.cuda.synchronize))
  end)

  it("index_select does not raise; the next item, cpu or synchronize does, then it is cleared", function()
    local x = ember.randn(5, 2)
    local bad = long({1, 7, 9, 0})
    local want = cpu_error(function() return x:index_select(1, bad) end)
    assert.are.equal("index_select: index 7 is out of range for dimension 1 of size 5", want)
    local xg, bg = x:cuda(), bad:cuda()
    local before = syncs()
    local y
    deferred(want, function() y = xg:index_select(1, bg) end,
             function() return y:sum():item() end)
    deferred(want, function() y = xg:index_select(1, bg) end, function() return y:cpu() end)
    deferred(want, function() y = xg:index_select(1, bg) end)
    -- the op itself waits for nothing: only the three reports and the
    -- three checks that it was cleared synchronised
    assert.are.equal(before + 6, syncs())
    -- and the tensor works again
    assert.are.equal(x[2][1], xg:index_select(1, long({2}):cuda())[1][1])
  end)

  it("gather, index_add_ and scatter_add_ report the CPU's first bad index at the next sync", function()
    local x = ember.randn(3, 4)
    local gi = long({{1, 2}, {5, 1}, {4, 0}})
    local function gather(t, i) return t:gather(2, i) end
    deferred(cpu_error(gather, x, gi), function() gather(x:cuda(), gi:cuda()) end)
    local function index_add(t, i, s) t:index_add_(1, i, s) end
    local ii, src = long({2, 4, 0}), ember.randn(3, 4)
    local want = cpu_error(index_add, x:clone(), ii, src)
    assert.are.equal("index_add_: index 4 is out of range for dimension 1 of size 3", want)
    deferred(want, function() index_add(x:cuda(), ii:cuda(), src:cuda()) end)
    local function scatter(t, i, s) t:scatter_add_(2, i, s) end
    deferred(cpu_error(scatter, x:clone(), gi, ember.randn(3, 2)),
             function() scatter(x:cuda(), gi:cuda(), ember.randn(3, 2):cuda()) end)
  end)

  it("a copy to the host that reports one writes nothing", function()
    local x = ember.arange(1, 4):float():cuda()
    local dst = ember.zeros(3)
    x:index_select(1, long({9}):cuda())
    local ok, err = pcall(dst.copy_, dst, x)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("index_select: index 9 is out of range", 1, true), err)
    assert.are.same({0.0, 0.0, 0.0}, dst:totable())
    dst:copy_(x)                                  -- cleared: the copy now runs
    assert.are.same({1.0, 2.0, 3.0}, dst:totable())
  end)

  it("the first of two bad ops wins", function()
    local x = ember.randn(5, 3):cuda()
    local want = "index_select: index 6 is out of range for dimension 1 of size 5"
    deferred(want, function()
      x:index_select(1, long({6}):cuda())
      x:gather(2, long({{0}}):cuda())
      x:index_select(1, long({9}):cuda())
    end)
  end)

  it("check_index follows the index's row-major order, strides and skip value", function()
    local idx = long({{1, 9}, {8, -5}}):t()            -- row-major: 1, 8, 9, -5
    local function check(i) i:_check_index(1, 7, -5, "check: ", " is bad") end
    local want = cpu_error(check, idx)
    assert.are.equal("check: 8 is bad", want)
    deferred(want, function() check(idx:cuda()) end)
    -- the skip value and in-range values pass, on both
    local ok = long({-5, 1, 7})
    check(ok)
    check(ok:cuda())
    assert(pcall(ember.cuda.synchronize))
  end)

  it("cross_entropy with a target out of range raises at the next loss:item(), as on the CPU", function()
    local logits = ember.randn(3, 4)
    local target = long({1, 5, 2})
    local want = cpu_error(F.cross_entropy, logits, target)
    assert.are.equal("cross_entropy: target 5 is out of range for 4 classes (expected 1..4 " ..
                     "or ignore_index -100)", want)
    local loss
    deferred(want, function() loss = F.cross_entropy(logits:cuda(), target:cuda()) end,
             function() return loss:item() end)
    want = cpu_error(F.nll_loss, logits, long({0, 1, 2}))
    deferred(want, function() loss = F.nll_loss(logits:cuda(), long({0, 1, 2}):cuda()) end,
             function() return loss:item() end)
    -- ignore_index is not an error, on either device
    local t2 = long({1, -100, 4})
    local lc = F.cross_entropy(logits, t2):item()
    local lg = F.cross_entropy(logits:cuda(), t2:cuda()):item()
    assert.is_true(math.abs(lc - lg) <= 1e-5 * math.max(1, math.abs(lc)))
  end)

  it("Embedding with an index out of range raises at the next sync, as on the CPU", function()
    local w = ember.randn(10, 3)
    local i = long({{1, 11}, {0, 2}})
    local want = cpu_error(F.embedding, i, w)
    assert.are.equal("embedding: index 11 is out of range for 10 embeddings " ..
                     "(indices count from 1)", want)
    local out
    deferred(want, function() out = F.embedding(i:cuda(), w:cuda()) end,
             function() return out:sum():item() end)
  end)

  it("cross_entropy, embedding and clip_grad_norm_ make no synchronisation", function()
    local emb = nn.Embedding(50, 8):cuda()
    local lin = nn.Linear(8, 5):cuda()
    local idx = ember.randint(1, 50, {16}):cuda()
    local target = ember.randint(1, 5, {16}):cuda()
    target[3] = -100                                     -- ignored
    ember.cuda.synchronize()
    local before = syncs()
    local loss = F.cross_entropy(lin(F.embedding(idx, emb.weight)), target)
    loss:backward()
    local params = {emb.weight, lin.weight, lin.bias}
    local total = nn.utils.clip_grad_norm_(params, 0.01)
    assert.are.equal(before, syncs(), "the step synchronised")
    assert.are.equal("cuda", total.device)
    -- the clipped gradients: their joint norm is max_norm (the norm was larger)
    local sq = 0
    for _, p in ipairs(params) do sq = sq + (p.grad:double() ^ 2):sum():item() end
    assert.is_true(total:item() > 0.01)
    assert.is_true(math.abs(math.sqrt(sq) - 0.01) < 1e-4, tostring(math.sqrt(sq)))
    assert(pcall(ember.cuda.synchronize))
  end)
end)
