-- CPU/GPU parity of every op (GPU only): each op runs on random inputs on
-- the CPU and on copies of them on the GPU, and the results must agree:
--   * float32 (TF32 off): max |gpu - cpu| / max(1, |cpu|) <= 1e-5 per
--     element; float64: 1e-12; the same NaNs and infinities;
--   * integer and bool results, indices and copies: exactly;
--   * data errors (an index out of range): the same message on both; on
--     the CPU the call raises it and leaves its inputs as they were; on
--     CUDA it is deferred (docs/cuda.md): the call returns, the next sync
--     raises it, and the op's output (an in-place op's input) is then
--     unspecified, so the inputs are not compared.
-- Gradients too: with `grad`, the float inputs are leaves on each device,
-- sum(out * v) is backpropagated with the same random v, and the grads
-- (which must live on the GPU) are compared the same way.
-- Shapes include broadcasting, non-contiguous views (made on the device),
-- 0-d and empty tensors, and sizes past one block of threads.
--
-- Without a CUDA device the whole file is one pending test that says why
-- (a failing one with EMBER_REQUIRE_CUDA=1: spec/helpers/cuda.lua).
-- To check the spec itself on a machine without a GPU, run it with
-- EMBER_PARITY_DEVICE=cpu: the "device" side is then a second CPU run, so
-- every comparison must hold exactly:
--   EMBER_PARITY_DEVICE=cpu busted --lua=lua5.4 spec/cuda/ops_spec.lua
local ember = require "ember"
local cuda_helper = require "helpers.cuda"
local nn = ember.nn
local F = nn.functional

local DEV = os.getenv("EMBER_PARITY_DEVICE") or "cuda"
local ON = DEV ~= "cuda" or ember.cuda.is_available()
local TOL = {float32 = 1e-5, float64 = 1e-12}
local NAN, INF = 0 / 0, math.huge
local DTYPES = {"float32", "float64", "int32", "int64", "uint8", "bool"}

-- {======================================================================
-- Helpers
-- =======================================================================

local function is_float(t)
  return ember.is_tensor(t) and (t.dtype == "float32" or t.dtype == "float64")
end

--- A tensor on the device under test (a separate copy in CPU mode).
local function to_dev(v)
  if not ember.is_tensor(v) then return v end
  if DEV == "cpu" then return v:clone() end
  return v:to(DEV)
end

--- A module on the device under test.
local function module_to_dev(m)
  if DEV == "cpu" then return m end
  return m:to(DEV)
end

--- The elements of a tensor as a flat Lua list (row-major).
local function values(t)
  t = t:cpu()
  if t:dim() == 0 then return {t:item()} end
  return t:reshape(-1):totable()
end

local function fmt(v)
  return math.type(v) == "float" and ("%.9g"):format(v) or tostring(v)
end

--- Does a (device) match b (CPU) within tol (relative to max(1, |b|))?
local function close(a, b, tol)
  if type(b) ~= "number" then return a == b end
  if type(a) ~= "number" or math.type(a) ~= math.type(b) then return false end
  if b ~= b then return a ~= a end
  if b == INF or b == -INF or tol == 0 then return a == b end
  return math.abs(a - b) <= tol * math.max(1, math.abs(b))
end

--- Assert that `got` (from the device) matches `want` (from the CPU).
local function assert_match(what, got, want, tol)
  if not ember.is_tensor(want) then
    if not close(got, want, type(want) == "number" and (tol or TOL.float32) or 0) then
      error(("%s: %s gives %s, the CPU %s"):format(what, DEV, fmt(got), fmt(want)), 0)
    end
    return
  end
  if not ember.is_tensor(got) then
    error(("%s: %s gives a %s, the CPU a tensor"):format(what, DEV, type(got)), 0)
  end
  if got.device ~= DEV then
    error(("%s: the result is on %s, expected %s"):format(what, got.device, DEV), 0)
  end
  if got.dtype ~= want.dtype then
    error(("%s: dtype %s on %s, %s on the CPU"):format(what, got.dtype, DEV, want.dtype), 0)
  end
  local gs, ws = got:shape(), want:shape()
  if table.concat(gs, ",") ~= table.concat(ws, ",") or #gs ~= #ws then
    error(("%s: shape [%s] on %s, [%s] on the CPU"):format(what, table.concat(gs, ","),
          DEV, table.concat(ws, ",")), 0)
  end
  tol = is_float(want) and (tol or TOL[want.dtype]) or 0
  local a, b = values(got), values(want)
  for i = 1, #b do
    if not close(a[i], b[i], tol) then
      error(("%s: element %d of %d is %s on %s, %s on the CPU (tolerance %g of max(1, |cpu|))")
            :format(what, i, #b, fmt(a[i]), DEV, fmt(b[i]), tol), 0)
    end
  end
end

--- Run fn on the CPU and on the device and compare what it returns.
-- inputs: a list (use table.pack when it holds nil) whose tensors are CPU
-- tensors; each run gets its own copy (so fn may write into them), other
-- values pass as they are.  opts:
--   tol       float tolerance (default TOL by dtype)
--   grad      true (every float input) or a set of positions: those inputs
--             are leaves that require grad, and their grads are compared
--   may_fail  the CPU may raise; the device must then raise the same
-- After the call the inputs themselves are compared too (in-place ops, and
-- what a failed op leaves behind).  Returns "error" when both raised.
local function parity(what, fn, inputs, opts)
  opts = opts or {}
  local n = inputs.n or #inputs
  local function prepare(copy)
    local xs = {n = n}
    for i = 1, n do
      local v = inputs[i]
      if ember.is_tensor(v) then
        v = copy(v)
        if opts.grad and is_float(v) and (opts.grad == true or opts.grad[i]) then
          v:requires_grad_(true)
        end
      end
      xs[i] = v
    end
    return xs
  end
  local xc = prepare(function(t) return t:clone() end)
  local xg = prepare(to_dev)
  local rc = table.pack(pcall(fn, table.unpack(xc, 1, n)))
  local rg = table.pack(pcall(fn, table.unpack(xg, 1, n)))
  local function same_inputs(when)
    for i = 1, n do
      if ember.is_tensor(xc[i]) and xc[i]:numel() <= 100000 then
        assert_match(("%s: input %d %s"):format(what, i, when), xg[i]:detach(), xc[i]:detach())
      end
    end
  end
  -- a data error the device deferred: raised by the next sync, without
  -- the position of the call (so compared without the CPU's)
  local deferred = false
  if not rc[1] and rg[1] and DEV == "cuda" then
    local ok, err = pcall(ember.cuda.synchronize)
    if not ok then
      deferred = true
      rg = {false, err, n = 2}
      rc = {false, (tostring(rc[2]):gsub("^[^:\n]*:%d+: ", "")), n = 2}
    end
  end
  if not rc[1] then
    if not opts.may_fail then
      error(("%s: the CPU call failed: %s"):format(what, tostring(rc[2])), 0)
    end
    if rg[1] then
      error(("%s: the CPU raises '%s', %s raises nothing, nor does the next sync")
            :format(what, tostring(rc[2]), DEV), 0)
    end
    -- the two calls sit on different lines here: compared without positions
    local function message(e) return (tostring(e):gsub("^[^:\n]*:%d+: ", "")) end
    if message(rc[2]) ~= message(rg[2]) then
      error(("%s: the CPU raises\n  %s\n%s raises\n  %s"):format(what, tostring(rc[2]),
            DEV, tostring(rg[2])), 0)
    end
    if not deferred then same_inputs("after the error") end
    return "error"
  end
  if not rg[1] then
    error(("%s: fails on %s: %s"):format(what, DEV, tostring(rg[2])), 0)
  end
  if rc.n ~= rg.n then
    error(("%s: %d results on %s, %d on the CPU"):format(what, rg.n - 1, DEV, rc.n - 1), 0)
  end
  for k = 2, rc.n do
    assert_match(rc.n > 2 and ("%s, result %d"):format(what, k - 1) or what,
                 rg[k], rc[k], opts.tol)
  end
  same_inputs("after the call")
  if opts.grad then
    local oc, og = rc[2], rg[2]
    local v = ember.randn(oc:shape(), {dtype = oc.dtype})
    local lc = (oc * v):sum()
    lc:backward()
    local lg = (og * to_dev(v)):sum()
    lg:backward()
    for i = 1, n do
      if ember.is_tensor(xc[i]) and xc[i].requires_grad then
        local gc, gg = xc[i].grad, xg[i].grad
        local gwhat = ("%s: grad of input %d"):format(what, i)
        if gc == nil then
          assert(gg == nil, gwhat .. ": none on the CPU, one on " .. DEV)
        else
          assert(gg ~= nil, gwhat .. ": none on " .. DEV)
          assert_match(gwhat, gg, gc, opts.grad_tol or opts.tol)
        end
      end
    end
  end
end

--- parity for a call that must fail on the CPU (same message on the device).
local function same_error(what, fn, inputs)
  assert(parity(what, fn, inputs, {may_fail = true}) == "error",
         what .. ": expected the call to fail")
end

--- Random values of a dtype: floats normal, integers in -9..9 (uint8
-- 0..19), bools half and half.
local function rnd(shape, dtype)
  dtype = dtype or "float32"
  if dtype == "float32" or dtype == "float64" then
    return ember.randn(shape, {dtype = dtype})
  elseif dtype == "bool" then
    return ember.randint(0, 1, shape):bool()
  elseif dtype == "uint8" then
    return ember.randint(0, 19, shape, {dtype = "uint8"})
  end
  return ember.randint(-9, 9, shape, {dtype = dtype})
end

--- Positive floats away from 0 (for log, sqrt, pow's base).
local function pos(shape, dtype)
  return rnd(shape, dtype):abs() + 0.1
end

local function sname(shape) return "[" .. table.concat(shape, ",") .. "]" end

-- The floats every elementwise op meets: zeros of both signs, NaN, both
-- infinities, tiny and large values, values around the kinks.
local SPECIAL = {0.0, -0.0, 1, -1, 0.5, -0.5, 2, -3, 10, -10, 100, -100, INF, -INF, NAN,
                 1e-30, -1e-30, 20, -20, 0.75, 1e-4, -1e-4, 3.5, -0.999}

-- Shapes for elementwise ops: 0-d, empty, small, and past one block.
local SHAPES = {{}, {0}, {7}, {3, 5}, {2, 3, 4}, {2, 0, 3}, {100003}}

-- Non-contiguous views, made on each device from a base of shape `base`.
local VIEWS = {
  {"transposed", {5, 3}, function(t) return t:t() end},
  {"narrowed", {4, 9}, function(t) return t:narrow(2, 3, 5) end},
  {"expanded", {3, 1}, function(t) return t:expand(3, 6) end},
  {"permuted", {2, 3, 4}, function(t) return t:permute(3, 1, 2) end},
  {"strided select", {4, 6}, function(t) return t:select(2, 2) end},
}

-- }======================================================================

describe("cuda ops: the GPU computes what the CPU computes", function()
  if not cuda_helper.available(ON) then return end

  -- TF32 would round matmul and conv inputs to 10 mantissa bits
  ember.cuda.set_allow_tf32(false)

  -- {====================================================================
  -- Elementwise
  -- =====================================================================

  describe("unary ops", function()
    -- name, out-of-place, in-place, input domain for the gradient check
    local UNARY = {
      {"neg", function(t) return t:neg() end, function(t) return t:neg_() end},
      {"abs", function(t) return t:abs() end, function(t) return t:abs_() end},
      {"exp", function(t) return t:exp() end, function(t) return t:exp_() end},
      {"log", function(t) return t:log() end, function(t) return t:log_() end, pos},
      {"sqrt", function(t) return t:sqrt() end, function(t) return t:sqrt_() end, pos},
      {"sin", function(t) return t:sin() end, function(t) return t:sin_() end},
      {"cos", function(t) return t:cos() end, function(t) return t:cos_() end},
      {"tanh", function(t) return t:tanh() end, function(t) return t:tanh_() end},
      {"sigmoid", function(t) return t:sigmoid() end, function(t) return t:sigmoid_() end},
      {"relu", function(t) return t:relu() end, function(t) return t:relu_() end},
      {"erf", function(t) return t:erf() end, function(t) return t:erf_() end},
      {"log1p", function(t) return t:log1p() end, function(t) return t:log1p_() end, pos},
      {"expm1", function(t) return t:expm1() end, function(t) return t:expm1_() end},
      {"gelu", function(t) return t:gelu() end, function(t) return t:gelu_() end},
      {"gelu tanh", function(t) return t:gelu("tanh") end, function(t) return t:gelu_("tanh") end},
      {"leaky_relu", function(t) return t:leaky_relu() end, function(t) return t:leaky_relu_() end},
      {"leaky_relu 0.2", function(t) return t:leaky_relu(0.2) end,
       function(t) return t:leaky_relu_(0.2) end},
      {"clamp(-0.5, 0.5)", function(t) return t:clamp(-0.5, 0.5) end,
       function(t) return t:clamp_(-0.5, 0.5) end},
      {"clamp(nil, 0.25)", function(t) return t:clamp(nil, 0.25) end,
       function(t) return t:clamp_(nil, 0.25) end},
      {"clamp(-1)", function(t) return t:clamp(-1) end, function(t) return t:clamp_(-1) end},
    }

    for _, u in ipairs(UNARY) do
      local name, op, op_, domain = u[1], u[2], u[3], u[4] or rnd
      it(name .. ": every shape and view, special values, dtypes, in place, gradient", function()
        ember.manual_seed(1)
        for _, dt in ipairs{"float32", "float64"} do
          parity(("%s %s special values"):format(name, dt), op,
                 {ember.tensor(SPECIAL, {dtype = dt})})
          for _, shape in ipairs(SHAPES) do
            parity(("%s %s %s"):format(name, dt, sname(shape)), op, {rnd(shape, dt) * 3})
          end
        end
        for _, v in ipairs(VIEWS) do
          parity(("%s of a %s view"):format(name, v[1]),
                 function(t) return op(v[3](t)) end, {rnd(v[2]) * 3})
        end
        -- integer and bool inputs: float results, or the dtype kept, or an error
        for _, dt in ipairs{"int32", "int64", "uint8", "bool"} do
          parity(("%s %s"):format(name, dt), op, {rnd({4, 5}, dt)}, {may_fail = true})
        end
        -- in place: on a tensor, through a transposed view, on integers
        parity(name .. "_ float32", function(t) op_(t); return t end,
               {ember.tensor(SPECIAL)})
        parity(name .. "_ through a transposed view", function(t) op_(t:t()); return t end,
               {rnd({6, 4}) * 3})
        parity(name .. "_ float64 [2,3,4]", function(t) op_(t); return t end,
               {rnd({2, 3, 4}, "float64")})
        parity(name .. "_ int64", function(t) op_(t); return t end,
               {rnd({5}, "int64")}, {may_fail = true})
        -- gradients, away from kinks and domain edges
        parity(name .. " gradient", op, {domain({3, 7})}, {grad = true})
        parity(name .. " gradient of a view", function(t) return op(t:t()) end,
               {domain({7, 3})}, {grad = true})
      end)
    end
  end)

  describe("binary ops", function()
    local BINARY = {
      {"add", function(a, b) return a + b end, "add_"},
      {"sub", function(a, b) return a - b end, "sub_"},
      {"mul", function(a, b) return a * b end, "mul_"},
      {"div", function(a, b) return a / b end, "div_"},
      {"pow", function(a, b) return a ^ b end, "pow_"},
      {"maximum", function(a, b) return a:maximum(b) end},
      {"minimum", function(a, b) return a:minimum(b) end},
    }

    --- Operands for op between dtypes: pow gets bases in -3..3 (uint8:
    -- wrapped to 253..255 for the negatives) and small non-negative
    -- integer exponents (a negative one is an error for integers).
    local function operands(name, sa, da, sb, db)
      if name ~= "pow" then return rnd(sa, da), rnd(sb, db) end
      local a
      if da == "float32" or da == "float64" then
        a = rnd(sa, da) * 2
      elseif da == "bool" then
        a = rnd(sa, da)
      else
        a = ember.randint(-3, 3, sa, {dtype = "int32"}):to(da)
      end
      local b
      if db == "float32" or db == "float64" then
        b = ember.randint(-2, 3, sb, {dtype = db})
      elseif db == "bool" then
        b = rnd(sb, db)
      else
        b = ember.randint(0, 4, sb, {dtype = db})
      end
      return a, b
    end

    local BROADCAST = {
      {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {3, 1}},
      {{}, {5}}, {{5}, {}}, {{}, {}}, {{0, 3}, {3}}, {{2, 1, 3}, {0, 1}},
      {{100003}, {1}},
    }

    for _, b in ipairs(BINARY) do
      local name, op, inplace = b[1], b[2], b[3]
      it(name .. ": all dtype pairs, broadcasting, views, numbers, in place, gradient", function()
        ember.manual_seed(2)
        for _, da in ipairs(DTYPES) do
          for _, db in ipairs(DTYPES) do
            local x, y = operands(name, {3, 4}, da, {4}, db)
            parity(("%s %s x %s"):format(name, da, db), op, {x, y}, {may_fail = true})
          end
        end
        for _, dt in ipairs{"float32", "float64", "int64"} do
          for _, s in ipairs(BROADCAST) do
            local x, y = operands(name, s[1], dt, s[2], dt)
            parity(("%s %s %s x %s"):format(name, dt, sname(s[1]), sname(s[2])), op, {x, y},
                   {may_fail = true})
          end
        end
        -- special values against each other (NaN and inf rules, x/0)
        local sp = ember.tensor(SPECIAL)
        parity(name .. " special x special", function(x, y) return op(x:view(-1, 1), y) end,
               {sp, sp})
        -- non-contiguous operands, made on the device
        parity(name .. " transposed x narrowed", function(x, y)
          return op(x:t(), y:narrow(2, 2, 5))
        end, {rnd({5, 4}), rnd({4, 8})})
        parity(name .. " expanded x permuted", function(x, y)
          return op(x:expand(4, 3, 2), y:permute(2, 3, 1))
        end, {rnd({3, 1}), rnd({2, 4, 3})})
        -- Lua numbers on either side (wrapped scalars)
        for _, dt in ipairs(DTYPES) do
          local x = operands(name, {2, 3}, dt, {1}, dt)
          for _, s in ipairs{2, 0.5, -1, 0, true} do
            parity(("%s %s with %s"):format(name, dt, tostring(s)),
                   function(t) return op(t, s) end, {x}, {may_fail = true})
            parity(("%s %s with %s first"):format(name, dt, tostring(s)),
                   function(t) return ember[name](s, t) end, {x}, {may_fail = true})
          end
        end
        -- in place: broadcast operand, overlapping operand, through a view
        if inplace then
          for _, dt in ipairs{"float32", "float64", "int32", "uint8"} do
            local x, y = operands(name, {3, 4}, dt, {4}, dt)
            parity(("%s %s"):format(inplace, dt),
                   function(t, u) t[inplace](t, u); return t end, {x, y}, {may_fail = true})
          end
          local sq = name == "pow" and pos({4, 4}) or rnd({4, 4})
          parity(inplace .. " with an overlapping operand (t and t:t())",
                 function(t) t[inplace](t, t:t()); return t end, {sq})
          local x, y = operands(name, {6, 4}, "float32", {6}, "float32")
          if name == "pow" then x = x:abs() + 0.5 end
          parity(inplace .. " through a transposed view",
                 function(t, u) local v = t:t(); v[inplace](v, u); return t end, {x, y})
          parity(inplace .. " with a number", function(t) t[inplace](t, 2); return t end,
                 {rnd({3, 4})})
        end
        -- gradients, broadcasting both ways
        local gx = name == "pow" and pos({3, 1}) or rnd({3, 1})
        parity(name .. " gradient [3,1] x [1,4]", op, {gx, rnd({1, 4})}, {grad = true})
        parity(name .. " gradient [2,3,4] x [4]", op,
               {name == "pow" and pos({2, 3, 4}) or rnd({2, 3, 4}), rnd({4})}, {grad = true})
        parity(name .. " gradient with a number", function(t) return op(t, 1.5) end,
               {pos({5})}, {grad = true})
        parity(name .. " gradient float64", op,
               {pos({4, 3}, "float64"), rnd({3}, "float64")}, {grad = true})
      end)
    end

    it("wraps integers on overflow exactly as the CPU", function()
      local i32 = ember.tensor({2147483647, -2147483648, 65536, 46341, -7, 0}, {dtype = "int32"})
      local i64 = ember.tensor({math.maxinteger, math.mininteger, 1 << 40, 3037000500, -1, 0},
                               {dtype = "int64"})
      local u8 = ember.tensor({200, 255, 0, 17, 128, 1}, {dtype = "uint8"})
      for _, t in ipairs{i32, i64, u8} do
        parity(t.dtype .. " t + t", function(a) return a + a end, {t})
        parity(t.dtype .. " t * t", function(a) return a * a end, {t})
        parity(t.dtype .. " t - t:flip", function(a) return a - a:index_select(1,
          ember.tensor({6, 5, 4, 3, 2, 1}, {dtype = "int64", device = a.device})) end, {t})
        parity(t.dtype .. " t + 1", function(a) return a + 1 end, {t})
        parity(t.dtype .. " -t", function(a) return -a end, {t}, {may_fail = true})
        parity(t.dtype .. " abs", function(a) return a:abs() end, {t}, {may_fail = true})
      end
      local base = ember.tensor({2, 3, -2, 0, 1, -1, 7}, {dtype = "int64"})
      local ex = ember.tensor({31, 20, 63, 0, 5, 7, 40}, {dtype = "int64"})
      parity("int64 pow wraps", function(a, e) return a ^ e end, {base, ex})
      parity("int32 pow wraps", function(a, e) return a ^ e end, {base:int(), ex:int()})
    end)

    it("raises the CPU's errors", function()
      local i = ember.tensor({1, 2}, {dtype = "int64"})
      same_error("int ^ negative int", function(a, e) return a ^ e end,
                 {i, ember.tensor({2, -1}, {dtype = "int64"})})
      same_error("int ^ -1", function(a) return a ^ -1 end, {i})
      same_error("bool - bool", function(a, b) return a - b end,
                 {ember.tensor({true, false}), ember.tensor({true, true})})
      same_error("uint8 + 1000", function(a) return a + 1000 end,
                 {ember.tensor({1}, {dtype = "uint8"})})
      same_error("div_ into int64", function(a) return a:div_(2) end, {i})
      same_error("shapes that do not broadcast", function(a, b) return a + b end,
                 {ember.zeros(2, 2), ember.zeros(3)})
    end)
  end)

  describe("comparisons and selection", function()
    local CMP = {"eq", "ne", "lt", "le", "gt", "ge"}

    it("eq, ne, lt, le, gt, ge: all dtype pairs, numbers, NaN, broadcasting", function()
      ember.manual_seed(3)
      --- values with many ties: small integers in every dtype
      local function tied(shape, dt)
        if dt == "bool" then return rnd(shape, dt) end
        return ember.randint(0, 3, shape, {dtype = dt})
      end
      for _, c in ipairs(CMP) do
        for _, da in ipairs(DTYPES) do
          for _, db in ipairs(DTYPES) do
            parity(("%s %s x %s"):format(c, da, db), function(a, b) return a[c](a, b) end,
                   {tied({3, 4}, da), tied({4}, db)}, {may_fail = true})
          end
          for _, s in ipairs{1, 1.5, -1, true} do
            parity(("%s %s with %s"):format(c, da, tostring(s)),
                   function(a) return a[c](a, s) end, {tied({2, 5}, da)}, {may_fail = true})
          end
        end
        local sp = ember.tensor(SPECIAL)
        parity(c .. " special x special", function(a, b) return a:view(-1, 1)[c](a:view(-1, 1), b) end,
               {sp, sp})
        parity(c .. " views, 0-d, empty", function(a, b, z, e)
          return a:t()[c](a:t(), b:expand(5, 4)), z[c](z, a), e[c](e, 0)
        end, {tied({4, 5}, "float32"), tied({1, 4}, "float32"), ember.tensor(1.0),
              ember.zeros(0, 2)})
        parity(c .. " [100003]", function(a, b) return a[c](a, b) end,
               {tied({100003}, "int32"), tied({100003}, "int32")})
      end
    end)

    it("equal", function()
      local a = ember.tensor({1, 2, NAN})
      parity("equal to itself (NaN)", function(x) return x:equal(x) end, {a})
      parity("equal to a copy", function(x, y) return x:equal(y) end,
             {ember.tensor({1, 2, 3}), ember.tensor({1, 2, 3}, {dtype = "int64"})})
      parity("equal, different shapes", function(x, y) return x:equal(y) end,
             {ember.tensor({1, 2}), ember.tensor({1, 2, 3})})
      local other = ember.arange(100003)
      other[50001] = -1
      parity("equal, one element apart", function(x, y) return x:equal(y) end,
             {ember.arange(100003), other})
      parity("equal, all 100003 the same", function(x, y) return x:equal(y) end,
             {ember.arange(100003), ember.arange(100003)})
      parity("equal of a view", function(x) return x:t():equal(x:t():contiguous()) end,
             {rnd({3, 4})})
    end)

    it("where: broadcasting, numbers, promotion, gradient", function()
      ember.manual_seed(4)
      local cond = rnd({3, 1}, "bool")
      parity("where tensors", function(c, a, b) return ember.where(c, a, b) end,
             {cond, rnd({1, 4}), rnd({3, 4})})
      parity("where number b", function(c, a) return ember.where(c, a, 0) end,
             {rnd({3, 4}, "bool"), rnd({3, 4})})
      parity("where numbers", function(c) return ember.where(c, 1, 2) end, {rnd({5}, "bool")})
      parity("where numbers (floats)", function(c) return ember.where(c, 1.5, -INF) end,
             {rnd({5}, "bool")})
      for _, da in ipairs(DTYPES) do
        for _, db in ipairs{"float32", "int64", "uint8", "bool"} do
          parity(("where %s, %s"):format(da, db), function(c, a, b) return ember.where(c, a, b) end,
                 {rnd({2, 3}, "bool"), rnd({2, 3}, da), rnd({3}, db)}, {may_fail = true})
        end
      end
      parity("where of views", function(c, a, b) return ember.where(c:t(), a:t(), b) end,
             {rnd({4, 3}, "bool"), rnd({4, 3}), rnd({})})
      parity("where 0-d and empty", function(c, a, e)
        return ember.where(c, a, 1), ember.where(e:gt(0), e, 0)
      end, {ember.tensor(true), ember.tensor(2.0), ember.zeros(0, 3)})
      parity("where [100003]", function(c, a, b) return ember.where(c, a, b) end,
             {rnd({100003}, "bool"), rnd({100003}), rnd({1})})
      parity("where gradient", function(c, a, b) return ember.where(c, a, b) end,
             {cond, rnd({1, 4}), rnd({3, 4})}, {grad = true})
      same_error("where with a float mask", function(c, a) return ember.where(c, a, 0) end,
                 {ember.ones(2), ember.ones(2)})
    end)

    it("masked_fill and masked_fill_: broadcasting, values, dtypes, gradient", function()
      ember.manual_seed(5)
      for _, dt in ipairs(DTYPES) do
        local t, m = rnd({3, 4}, dt), rnd({4}, "bool")
        for _, v in ipairs{7, -1, 0.5, true, -INF} do
          parity(("masked_fill %s %s"):format(dt, tostring(v)),
                 function(x, mask) return x:masked_fill(mask, v) end, {t, m}, {may_fail = true})
          parity(("masked_fill_ %s %s"):format(dt, tostring(v)),
                 function(x, mask) x:masked_fill_(mask, v); return x end, {t, m},
                 {may_fail = true})
        end
      end
      parity("masked_fill_ through a view", function(x, mask) x:t():masked_fill_(mask, 9); return x end,
             {rnd({4, 3}), rnd({3, 4}, "bool")})
      parity("masked_fill 0-d, empty, [100003]", function(a, b, c)
        return a:masked_fill(a:gt(0), 1), b:masked_fill(b:gt(0), 1), c:masked_fill(c:gt(0), 0)
      end, {rnd({}), rnd({0, 4}), rnd({100003})})
      parity("masked_fill gradient", function(x, mask) return x:masked_fill(mask, 2) end,
             {rnd({3, 4}), rnd({3, 1}, "bool")}, {grad = true})
      same_error("masked_fill with a float mask", function(x) return x:masked_fill(x, 1) end,
                 {rnd({3})})
    end)
  end)

  -- }====================================================================

  -- {====================================================================
  -- Reductions and softmax
  -- =====================================================================

  describe("reductions", function()
    local OPS = {"sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "std"}

    --- The calls of a reduction that fit a tensor of ndim dimensions.
    local function calls(op, ndim)
      local cs = {
        {op .. "()", function(t) return t[op](t) end},
        {op .. "(1)", function(t) return t[op](t, 1) end},
        {op .. "(-1, true)", function(t) return t[op](t, -1, true) end},
      }
      if ndim >= 2 then
        cs[#cs + 1] = {op .. "(2)", function(t) return t[op](t, 2) end}
        cs[#cs + 1] = {op .. "(1, true)", function(t) return t[op](t, 1, true) end}
      end
      if ndim >= 3 then
        cs[#cs + 1] = {op .. "(2, true)", function(t) return t[op](t, 2, true) end}
      end
      if op == "var" or op == "std" then
        cs[#cs + 1] = {op .. "{correction = 0}", function(t) return t[op](t, {correction = 0}) end}
        cs[#cs + 1] = {op .. "(1, false, false)", function(t) return t[op](t, 1, false, false) end}
        cs[#cs + 1] = {op .. "(-1, true, {correction = 2})",
                       function(t) return t[op](t, -1, true, {correction = 2}) end}
      end
      return cs
    end

    --- Inputs for op in dtype: prod gets values near 1 (or -2..2 for
    -- integers), the others rnd's.
    local function input(op, shape, dt)
      dt = dt or "float32"
      if op ~= "prod" then return rnd(shape, dt) end
      if dt == "float32" or dt == "float64" then return rnd(shape, dt) * 0.05 + 1 end
      if dt == "bool" then return rnd(shape, dt) end
      return ember.randint(dt == "uint8" and 0 or -2, 2, shape, {dtype = dt})
    end

    local RSHAPES = {{}, {1}, {7}, {4, 5}, {3, 4, 5}, {4, 1}, {0}, {2, 0}, {0, 3}}

    for _, op in ipairs(OPS) do
      it(op .. ": with and without dims, every dtype, views, empty, large, gradient", function()
        ember.manual_seed(6)
        for _, dt in ipairs(DTYPES) do
          for _, shape in ipairs(RSHAPES) do
            local t = input(op, shape, dt)
            for _, c in ipairs(calls(op, #shape)) do
              parity(("%s %s %s"):format(c[1], dt, sname(shape)), c[2], {t}, {may_fail = true})
            end
          end
        end
        -- non-contiguous inputs: transposed, narrowed, expanded
        for _, v in ipairs(VIEWS) do
          local t = input(op, v[2], "float32")
          for _, c in ipairs(calls(op, 2)) do
            parity(("%s of a %s view"):format(c[1], v[1]), function(x)
              local y = v[3](x)
              if y:dim() < 2 then y = y:view(1, -1) end
              return c[2](y)
            end, {t})
          end
        end
        -- ties (the first position wins) and NaN
        local ties = ember.randint(0, 2, {6, 9}, {dtype = "int64"})
        for _, dt in ipairs{"int64", "float32", "uint8"} do
          for _, c in ipairs(calls(op, 2)) do
            parity(("%s with ties %s"):format(c[1], dt), c[2], {ties:to(dt)}, {may_fail = true})
          end
        end
        local nan = ember.tensor({{1, NAN, 3}, {NAN, 2, NAN}, {4, 5, 6}, {-INF, INF, 0}})
        for _, c in ipairs(calls(op, 2)) do
          parity(c[1] .. " with NaN and inf", c[2], {nan})
        end
        -- sizes past one block, along the last dim and along the first
        local big = {{1000003}, {3, 70001}, {70001, 3}, {257, 513}}
        for _, shape in ipairs(big) do
          local t = input(op, shape, "float32")
          if op == "prod" then t = (t - 1) * 0.01 + 1 end
          for _, c in ipairs(calls(op, #shape)) do
            parity(("%s float32 %s"):format(c[1], sname(shape)), c[2], {t})
          end
          local i = input(op, shape, "int64")
          parity(("%s() int64 %s"):format(op, sname(shape)), function(x) return x[op](x) end,
                 {i}, {may_fail = true})
          parity(("%s(1) int32 %s"):format(op, sname(shape)), function(x) return x[op](x, 1) end,
                 {i:int()}, {may_fail = true})
        end
        -- gradients
        if op ~= "argmax" and op ~= "argmin" then
          for _, c in ipairs(calls(op, 3)) do
            parity(c[1] .. " gradient", c[2], {input(op, {3, 4, 5}, "float32")}, {grad = true})
          end
          parity(op .. "(2) gradient of a transposed view", function(x) return x:t()[op](x:t(), 2) end,
                 {input(op, {6, 4})}, {grad = true})
          parity(op .. "() gradient float64", function(x) return x[op](x) end,
                 {input(op, {5, 3}, "float64")}, {grad = true})
        end
      end)
    end

    it("raises the CPU's errors (empty max, bad dims)", function()
      same_error("max of an empty tensor", function(t) return t:max() end, {ember.zeros(0)})
      same_error("argmin over an empty dim", function(t) return t:argmin(2) end, {ember.zeros(3, 0)})
      same_error("sum over dim 3 of a 2-d tensor", function(t) return t:sum(3) end, {ember.zeros(2, 2)})
    end)
  end)

  describe("softmax", function()
    for _, name in ipairs{"softmax", "log_softmax"} do
      it(name .. ": every dim, views, -inf, integers, large rows, gradient", function()
        ember.manual_seed(7)
        local function sm(t, ...) return t[name](t, ...) end
        for _, dt in ipairs{"float32", "float64"} do
          parity(name .. " " .. dt .. " [5]", function(t) return sm(t) end, {rnd({5}, dt) * 3})
          parity(name .. " " .. dt .. " 0-d", function(t) return sm(t, 1) end, {rnd({}, dt)})
          for _, d in ipairs{1, 2, -1} do
            parity(("%s %s [3,6] dim %d"):format(name, dt, d), function(t) return sm(t, d) end,
                   {rnd({3, 6}, dt) * 3})
            parity(("%s %s [2,3,4] dim %d"):format(name, dt, d), function(t) return sm(t, d) end,
                   {rnd({2, 3, 4}, dt) * 3})
          end
          parity(name .. " " .. dt .. " [2,3,4] dim 3", function(t) return sm(t, 3) end,
                 {rnd({2, 3, 4}, dt)})
        end
        parity(name .. " -inf, a row of -inf, huge logits", function(t) return sm(t, 2) end,
               {ember.tensor({{0, -INF, 1}, {-INF, -INF, -INF}, {1000, 0, -1000}, {NAN, 0, 1},
                              {INF, 0, 1}})})
        parity(name .. " of a transposed view", function(t) return sm(t:t(), 2) end,
               {rnd({6, 4}) * 3})
        parity(name .. " of an expanded view", function(t) return sm(t:expand(3, 5), 1) end,
               {rnd({1, 5})})
        parity(name .. " int64", function(t) return sm(t, 1) end, {rnd({6}, "int64")})
        parity(name .. " empty", function(t) return sm(t, 2) end, {rnd({0, 3})})
        parity(name .. " rows of 5000", function(t) return sm(t, 2) end, {rnd({3, 5000}) * 4})
        parity(name .. " over dim 1 of [5000,3]", function(t) return sm(t, 1) end,
               {rnd({5000, 3}) * 4})
        parity(name .. " [1000,10] (a batch of logits)", function(t) return sm(t, 2) end,
               {rnd({1000, 10}) * 4})
        parity(name .. " gradient dim 2", function(t) return sm(t, 2) end, {rnd({4, 7})},
               {grad = true})
        parity(name .. " gradient dim 1 of 3-d", function(t) return sm(t, 1) end,
               {rnd({3, 4, 2})}, {grad = true})
      end)
    end
  end)

  -- }====================================================================

  -- {====================================================================
  -- Matrix product
  -- =====================================================================

  describe("matmul", function()
    local MM = {
      {"1-d . 1-d", {5}, {5}},
      {"1-d x 2-d", {5}, {5, 3}},
      {"2-d x 1-d", {4, 5}, {5}},
      {"2-d x 2-d", {4, 5}, {5, 3}},
      {"2-d, sizes off the tiles", {127, 65}, {65, 129}},
      {"2-d, 256", {256, 256}, {256, 256}},
      {"batched", {3, 4, 5}, {3, 5, 2}},
      {"broadcast batch", {2, 1, 4, 5}, {3, 5, 2}},
      {"batch x 2-d", {3, 4, 5}, {5, 2}},
      {"2-d x batch", {4, 5}, {3, 5, 2}},
      {"1-d x batch", {5}, {3, 5, 2}},
      {"batch x 1-d", {3, 4, 5}, {5}},
      {"one row", {1, 64}, {64, 32}},
      {"one column", {32, 64}, {64, 1}},
      {"empty k", {4, 0}, {0, 3}},
      {"empty m", {0, 5}, {5, 3}},
      {"empty batch", {0, 2, 3}, {3, 4}},
    }

    it("every operand layout of torch.matmul, float32 and float64, with gradients", function()
      ember.manual_seed(8)
      local mm = function(a, b) return a:matmul(b) end
      for _, c in ipairs(MM) do
        for _, dt in ipairs{"float32", "float64"} do
          parity(("matmul %s %s"):format(c[1], dt), mm, {rnd(c[2], dt), rnd(c[3], dt)})
        end
        parity(("matmul %s gradient"):format(c[1]), mm, {rnd(c[2]), rnd(c[3])}, {grad = true})
      end
    end)

    it("transposed, narrowed, expanded and permuted operands", function()
      ember.manual_seed(9)
      local V = {
        {"a transposed", {5, 4}, {5, 3}, function(a, b) return a:t():matmul(b) end},
        {"b transposed", {4, 5}, {3, 5}, function(a, b) return a:matmul(b:t()) end},
        {"both transposed", {5, 4}, {3, 5}, function(a, b) return a:t():matmul(b:t()) end},
        {"batched transposes", {3, 5, 4}, {3, 2, 5},
         function(a, b) return a:transpose(2, 3):matmul(b:transpose(2, 3)) end},
        {"a narrowed (row stride > cols)", {4, 9}, {5, 3},
         function(a, b) return a:narrow(2, 3, 5):matmul(b) end},
        {"b narrowed", {4, 5}, {5, 7}, function(a, b) return a:matmul(b:narrow(2, 2, 3)) end},
        {"a column-strided (a select)", {4, 5, 2}, {5, 3},
         function(a, b) return a:select(3, 2):matmul(b) end},
        {"expanded batch (stride 0)", {1, 4, 5}, {3, 5, 2},
         function(a, b) return a:expand(3, 4, 5):matmul(b) end},
        {"permuted batch", {4, 3, 5}, {5, 3, 2},
         function(a, b) return a:permute(2, 1, 3):matmul(b:permute(2, 1, 3)) end},
        {"a 1-d strided", {10}, {5, 3}, function(a, b) return a:narrow(1, 1, 5):matmul(b) end},
      }
      for _, c in ipairs(V) do
        parity("matmul " .. c[1], c[4], {rnd(c[2]), rnd(c[3])})
        parity("matmul " .. c[1] .. " float64", c[4], {rnd(c[2], "float64"), rnd(c[3], "float64")})
        parity("matmul " .. c[1] .. " gradient", c[4], {rnd(c[2]), rnd(c[3])}, {grad = true})
      end
    end)

    it("integers exactly (wrapping), mixed dtypes promoted, the CPU's errors", function()
      ember.manual_seed(10)
      local mm = function(a, b) return a:matmul(b) end
      for _, dt in ipairs{"int32", "int64", "uint8"} do
        parity("matmul " .. dt, mm, {rnd({4, 5}, dt), rnd({5, 3}, dt)}, {may_fail = true})
        parity("matmul " .. dt .. " batched", mm, {rnd({2, 4, 5}, dt), rnd({5, 3}, dt)},
               {may_fail = true})
      end
      local big = ember.tensor({{math.maxinteger, 2}, {3, math.mininteger}}, {dtype = "int64"})
      parity("matmul int64 wraps", mm, {big, big})
      parity("matmul int32 x float32", mm, {rnd({3, 4}, "int32"), rnd({4, 2})})
      parity("matmul float32 x float64", mm, {rnd({3, 4}), rnd({4, 2}, "float64")})
      same_error("matmul bool", mm, {rnd({2, 2}, "bool"), rnd({2, 2}, "bool")})
      same_error("matmul shapes", mm, {rnd({2, 3}), rnd({4, 5})})
      same_error("matmul 0-d", mm, {rnd({}), rnd({3})})
    end)

    -- TF32's tolerance, derived.  TF32 keeps 10 explicit mantissa bits:
    -- each input of the product is rounded with relative error at most
    -- u = 2^-11 (to nearest; below 2^-10 toward zero if the hardware
    -- truncates).  Product k of c_ij = sum_k a_ik b_kj then carries an error
    -- (da + db) a_ik b_kj, and the K errors, of independent sign, add like a
    -- random walk: c_ij is off by about u sqrt(2/3) S_ij (one standard
    -- deviation), S_ij = sqrt(sum_k (a_ik b_kj)^2); truncation adds a bias of
    -- at most 2^-10 |c_ij| (both inputs shrink toward zero).  S is the
    -- row's norm that matters: for unit-normal data S ~ sqrt(K), so the error
    -- is about 1e-3 sqrt(K) x 0.4 -- growing with K, and unrelated to |c_ij|,
    -- which is why 1e-2 of max(1, |c|) failed about 0.6% of elements at K =
    -- 512.  The bound used, 2^-10 (|c_ij| + 4 S_ij), is the bias plus over
    -- ten standard deviations of the rounding noise, yet tight enough to
    -- catch a coarser rounding.  Simulated on the CPU (inputs rounded to 11
    -- significant bits, this seed and size): the worst element reaches 0.31
    -- of the bound, while the old rule fails 1559 of 262144; rounded to
    -- bfloat16's 8 bits, 13542 elements miss the bound.  float32
    -- accumulation (2^-24 per add) is a thousand times smaller.
    it("with TF32 allowed stays within TF32's rounding, and the switch goes back off", function()
      ember.manual_seed(11)
      local K = 512
      local a, b = rnd({512, K}), rnd({K, 512})
      ember.cuda.set_allow_tf32(true)
      local ok, got = pcall(function() return to_dev(a):matmul(to_dev(b)):cpu() end)
      ember.cuda.set_allow_tf32(false)
      assert(ok, got)
      assert.is_false(ember.cuda.get_allow_tf32())
      local a64, b64 = a:to("float64"), b:to("float64")
      local want = a64:matmul(b64)
      local S = (a64 * a64):matmul(b64 * b64):sqrt()
      local tol = (want:abs() + S * 4) * 2 ^ -10
      local ratio = (got:to("float64") - want):abs() / tol
      local worst = ratio:max():item()
      local over = ratio:gt(1):sum():item()
      assert(over == 0, ("matmul %d with TF32: %d of %d elements beyond 2^-10 (|c| + 4 S); " ..
             "the worst is %.3g times the bound"):format(K, over, want:numel(), worst))
      parity("matmul 512 without TF32", function(x, y) return x:matmul(y) end, {a, b})
    end)
  end)

  -- }====================================================================

  -- {====================================================================
  -- Joining and indexing
  -- =====================================================================

  describe("joining", function()
    it("cat: dims, mixed dtypes, empty and non-contiguous parts, gradient", function()
      ember.manual_seed(12)
      parity("cat dim 1", function(a, b) return ember.cat({a, b}) end, {rnd({2, 3}), rnd({4, 3})})
      parity("cat dim 2", function(a, b) return ember.cat({a, b}, 2) end, {rnd({3, 2}), rnd({3, 5})})
      parity("cat dim -1 of 3-d", function(a, b, c) return ember.cat({a, b, c}, -1) end,
             {rnd({2, 3, 1}), rnd({2, 3, 4}), rnd({2, 3, 2})})
      parity("cat dim 2 of 3-d", function(a, b) return ember.cat({a, b}, 2) end,
             {rnd({2, 1, 4}), rnd({2, 3, 4})})
      parity("cat with empty parts", function(a, b, c) return ember.cat({a, b, c}) end,
             {rnd({0, 3}), rnd({2, 3}), rnd({0, 3})})
      parity("cat of views", function(a, b) return ember.cat({a:t(), b:narrow(2, 2, 4)}, 2) end,
             {rnd({2, 3}), rnd({3, 6})})
      parity("cat of an expanded part", function(a, b) return ember.cat({a:expand(2, 3), b}) end,
             {rnd({1, 3}), rnd({2, 3})})
      for _, da in ipairs(DTYPES) do
        for _, db in ipairs(DTYPES) do
          parity(("cat %s, %s"):format(da, db), function(a, b) return ember.cat({a, b}) end,
                 {rnd({2, 3}, da), rnd({1, 3}, db)}, {may_fail = true})
        end
      end
      parity("cat large", function(a, b) return ember.cat({a, b}, 2) end,
             {rnd({300, 257}), rnd({300, 129})})
      parity("cat gradient", function(a, b, c) return ember.cat({a, b, c}, 2) end,
             {rnd({3, 2}), rnd({3, 4}), rnd({3, 1})}, {grad = true})
      parity("cat gradient of views", function(a, b) return ember.cat({a:t(), b}) end,
             {rnd({3, 2}), rnd({4, 3})}, {grad = true})
      same_error("cat of 0-d tensors", function(a, b) return ember.cat({a, b}) end,
                 {rnd({}), rnd({})})
      same_error("cat of mismatched shapes", function(a, b) return ember.cat({a, b}) end,
                 {rnd({2, 3}), rnd({2, 4})})
    end)

    it("stack: dims, dtypes, views, gradient", function()
      ember.manual_seed(13)
      for _, d in ipairs{1, 2, 3, -1} do
        parity("stack dim " .. d, function(a, b, c) return ember.stack({a, b, c}, d) end,
               {rnd({2, 3}), rnd({2, 3}), rnd({2, 3})})
      end
      parity("stack of 0-d", function(a, b) return ember.stack({a, b}) end, {rnd({}), rnd({})})
      parity("stack of empty", function(a, b) return ember.stack({a, b}, 2) end,
             {rnd({0, 3}), rnd({0, 3})})
      parity("stack of views", function(a, b) return ember.stack({a:t(), b}, 2) end,
             {rnd({3, 2}), rnd({2, 3})})
      parity("stack int32, float64", function(a, b) return ember.stack({a, b}) end,
             {rnd({4}, "int32"), rnd({4}, "float64")})
      parity("stack bool", function(a, b) return ember.stack({a, b}) end,
             {rnd({4}, "bool"), rnd({4}, "bool")})
      parity("stack gradient", function(a, b) return ember.stack({a, b}, 2) end,
             {rnd({3, 4}), rnd({3, 4})}, {grad = true})
      same_error("stack of mismatched shapes", function(a, b) return ember.stack({a, b}) end,
                 {rnd({2}), rnd({3})})
    end)
  end)

  describe("indexing", function()
    local function idx(t, dt) return ember.tensor(t, {dtype = dt or "int64"}) end

    it("index_select: dims, index dtypes, repeats, views, empty, gradient, errors", function()
      ember.manual_seed(14)
      local sel = function(d) return function(s, i) return s:index_select(d, i) end end
      for _, dt in ipairs(DTYPES) do
        parity("index_select dim 1 " .. dt, sel(1), {rnd({5, 4}, dt), idx({3, 1, 5, 1, 3})})
      end
      parity("index_select dim 2, int32 index", sel(2), {rnd({3, 4}), idx({4, 4, 2}, "int32")})
      parity("index_select dim 3 of 3-d", sel(3), {rnd({2, 3, 6}), idx({6, 1})})
      parity("index_select dim -1", sel(-1), {rnd({2, 3, 6}), idx({2})})
      parity("index_select with a 0-d index", sel(1), {rnd({5, 2}), ember.tensor(3, {dtype = "int64"})})
      parity("index_select of a 1-d tensor", sel(1), {rnd({10}), idx({10, 1, 5})})
      parity("index_select with an empty index", sel(1), {rnd({5, 2}), ember.zeros(0, {dtype = "int64"})})
      parity("index_select of a transposed view", function(s, i) return s:t():index_select(1, i) end,
             {rnd({4, 6}), idx({6, 2, 2})})
      parity("index_select large", sel(1), {rnd({1000, 64}), ember.randint(1, 1000, {5000})})
      parity("index_select gradient (repeats add up)", sel(1), {rnd({5, 4}), idx({3, 1, 5, 1, 3})},
             {grad = true})
      parity("index_select gradient dim 2", sel(2), {rnd({3, 5}), idx({5, 5, 1})}, {grad = true})
      for _, bad in ipairs{{0}, {6}, {-1}, {1, 2, 7}} do
        same_error("index_select index " .. table.concat(bad, ","), sel(1), {rnd({5, 2}), idx(bad)})
      end
      same_error("index_select with a float index", sel(1), {rnd({5, 2}), ember.tensor({1.0})})
      same_error("index_select with a 2-d index", sel(1), {rnd({5, 2}), idx({{1}})})
    end)

    it("gather: dims, index dtypes, smaller index, views, gradient, errors", function()
      ember.manual_seed(15)
      local g = function(d) return function(s, i) return s:gather(d, i) end end
      for _, dt in ipairs(DTYPES) do
        parity("gather dim 2 " .. dt, g(2), {rnd({3, 4}, dt), ember.randint(1, 4, {3, 2})})
      end
      parity("gather dim 1", g(1), {rnd({3, 4}), ember.randint(1, 3, {5, 4})})
      parity("gather dim 1, int32 index", g(1), {rnd({3, 4}), ember.randint(1, 3, {2, 3}, {dtype = "int32"})})
      parity("gather 3-d dim 2", g(2), {rnd({2, 5, 3}), ember.randint(1, 5, {2, 4, 3})})
      parity("gather 3-d dim 3, smaller index", g(3), {rnd({2, 5, 3}), ember.randint(1, 3, {1, 2, 6})})
      parity("gather of the labels (cross-entropy's pick)", function(s, y) return s:gather(2, y:view(-1, 1)) end,
             {rnd({64, 10}), ember.randint(1, 10, {64})})
      parity("gather of a transposed view", function(s, i) return s:t():gather(2, i) end,
             {rnd({4, 3}), ember.randint(1, 4, {3, 2})})
      parity("gather with a transposed index", function(s, i) return s:gather(2, i:t()) end,
             {rnd({3, 4}), ember.randint(1, 4, {2, 3})})
      parity("gather empty", g(2), {rnd({3, 4}), ember.zeros(3, 0, {dtype = "int64"})})
      parity("gather 0-d", g(1), {rnd({}), ember.tensor(1, {dtype = "int64"})}, {may_fail = true})
      parity("gather large", g(2), {rnd({2000, 100}), ember.randint(1, 100, {2000, 50})})
      parity("gather gradient (repeats add up)", g(2), {rnd({3, 4}), ember.randint(1, 2, {3, 6})},
             {grad = true})
      parity("gather gradient dim 1", g(1), {rnd({3, 4}), ember.randint(1, 3, {5, 4})}, {grad = true})
      for _, bad in ipairs{0, 5, -2} do
        same_error("gather index " .. bad, g(2), {rnd({3, 4}), idx({{1, 2}, {bad, 1}, {4, 4}})})
      end
      same_error("gather index too large a shape", g(2), {rnd({3, 4}), ember.ones(4, 2, {dtype = "int64"})})
      same_error("gather float index", g(2), {rnd({3, 4}), ember.ones(3, 2)})
    end)

    it("index_add_: dims, dtypes, repeated indices, views, errors", function()
      ember.manual_seed(16)
      local ia = function(d) return function(t, i, s) t:index_add_(d, i, s); return t end end
      for _, dt in ipairs{"float32", "float64", "int32", "int64"} do
        parity("index_add_ dim 1 " .. dt, ia(1), {rnd({5, 3}, dt), idx({1, 3, 1, 5}), rnd({4, 3}, dt)})
      end
      parity("index_add_ dim 2", ia(2), {rnd({3, 5}), idx({2, 2, 5}, "int32"), rnd({3, 3})})
      parity("index_add_ dim 3 of 3-d", ia(3), {rnd({2, 3, 4}), idx({4, 1}), rnd({2, 3, 2})})
      parity("index_add_ into a 1-d tensor", ia(1), {ember.zeros(3), idx({1, 3, 1}), ember.tensor({1, 2, 4})})
      parity("index_add_ into a transposed view", function(t, i, s)
        t:t():index_add_(1, i, s); return t
      end, {rnd({3, 5}), idx({5, 1, 5}), rnd({3, 3})})
      parity("index_add_ from a transposed source", function(t, i, s)
        t:index_add_(1, i, s:t()); return t
      end, {rnd({5, 3}), idx({2, 4}), rnd({3, 2})})
      parity("index_add_ empty index", ia(1), {rnd({5, 3}), ember.zeros(0, {dtype = "int64"}), rnd({0, 3})})
      -- many additions into few rows: the GPU adds in another order
      parity("index_add_ 20000 rows into 3", ia(1),
             {rnd({3, 64}), ember.randint(1, 3, {20000}), rnd({20000, 64})}, {tol = 1e-4})
      parity("index_add_ int64 20000 rows into 3 (exact)", ia(1),
             {rnd({3, 64}, "int64"), ember.randint(1, 3, {20000}), rnd({20000, 64}, "int64")})
      for _, bad in ipairs{{0, 1}, {1, 6}, {-1, 2}} do
        same_error("index_add_ index " .. table.concat(bad, ","), ia(1),
                   {rnd({5, 3}), idx(bad), rnd({2, 3})})
      end
      same_error("index_add_ source of the wrong shape", ia(1), {rnd({5, 3}), idx({1, 2}), rnd({2, 4})})
    end)

    it("scatter_add_: dims, dtypes, repeated indices, views, errors", function()
      ember.manual_seed(17)
      local sa = function(d) return function(t, i, s) t:scatter_add_(d, i, s); return t end end
      for _, dt in ipairs{"float32", "float64", "int32", "int64"} do
        parity("scatter_add_ dim 2 " .. dt, sa(2),
               {rnd({3, 5}, dt), ember.randint(1, 5, {3, 4}), rnd({3, 4}, dt)})
      end
      parity("scatter_add_ dim 1", sa(1), {rnd({3, 4}), ember.randint(1, 3, {6, 4}), rnd({6, 4})})
      parity("scatter_add_ int32 index", sa(1),
             {rnd({3, 4}), ember.randint(1, 3, {6, 4}, {dtype = "int32"}), rnd({6, 4})})
      parity("scatter_add_ 3-d dim 3", sa(3),
             {rnd({2, 3, 4}), ember.randint(1, 4, {2, 3, 7}), rnd({2, 3, 7})})
      parity("scatter_add_ with a smaller index than src", function(t, i, s)
        t:scatter_add_(2, i, s:narrow(2, 1, 2)); return t
      end, {rnd({3, 5}), ember.randint(1, 5, {3, 2}), rnd({3, 4})}, {may_fail = true})
      parity("scatter_add_ into a transposed view", function(t, i, s)
        t:t():scatter_add_(2, i, s); return t
      end, {rnd({5, 3}), ember.randint(1, 5, {3, 4}), rnd({3, 4})})
      parity("scatter_add_ many into few", sa(2),
             {rnd({4, 3}), ember.randint(1, 3, {4, 20000}), rnd({4, 20000})}, {tol = 1e-4})
      parity("scatter_add_ int64 many into few (exact)", sa(2),
             {rnd({4, 3}, "int64"), ember.randint(1, 3, {4, 20000}), rnd({4, 20000}, "int64")})
      for _, bad in ipairs{0, 6, -1} do
        same_error("scatter_add_ index " .. bad, sa(2),
                   {rnd({3, 5}), idx({{1, 2}, {3, bad}, {5, 5}}), rnd({3, 2})})
      end
    end)
  end)

  -- }====================================================================

  -- {====================================================================
  -- Convolution and pooling
  -- =====================================================================

  describe("convolution and pooling", function()
    local CONV = {
      {"plain", {2, 3, 8, 8}, {4, 3, 3, 3}, true},
      {"no bias", {2, 3, 8, 8}, {4, 3, 3, 3}, false},
      {"stride 2, padding 1", {2, 3, 9, 9}, {5, 3, 3, 3}, true, 2, 1},
      {"rectangular stride, padding, dilation", {1, 2, 11, 9}, {3, 2, 3, 2}, false,
       {2, 1}, {2, 1}, {2, 3}},
      {"groups 2", {2, 4, 7, 7}, {6, 2, 3, 3}, true, 1, 0, 1, 2},
      {"depthwise, stride 2, padding 1, dilation 2", {2, 6, 10, 10}, {6, 1, 3, 3}, true,
       2, 1, 2, 6},
      {"1x1", {2, 8, 5, 5}, {4, 8, 1, 1}, true},
      {"padding 'same' (even kernel)", {1, 3, 6, 6}, {2, 3, 4, 4}, true, 1, "same"},
      {"kernel as large as the input", {2, 2, 3, 3}, {3, 2, 3, 3}, true},
      {"unbatched", {3, 7, 7}, {2, 3, 3, 3}, true},
      {"the CNN's first layer", {2, 1, 28, 28}, {32, 1, 3, 3}, true},
      {"the CNN's second layer", {2, 32, 13, 13}, {64, 32, 3, 3}, true},
      {"the CNN's third layer", {2, 64, 5, 5}, {64, 64, 3, 3}, true},
    }

    it("conv2d: stride, padding, dilation, groups, bias; its gradient", function()
      ember.manual_seed(18)
      for _, c in ipairs(CONV) do
        local name, xs, ws, bias, stride, padding, dilation, groups = table.unpack(c)
        local conv = function(x, w, b) return F.conv2d(x, w, b, stride, padding, dilation, groups) end
        local b = bias and rnd({ws[1]}) or nil
        parity("conv2d " .. name, conv, table.pack(rnd(xs), rnd(ws), b))
        parity("conv2d " .. name .. " float64", conv,
               table.pack(rnd(xs, "float64"), rnd(ws, "float64"), bias and rnd({ws[1]}, "float64") or nil))
        parity("conv2d " .. name .. " gradient", conv, table.pack(rnd(xs), rnd(ws), b), {grad = true})
      end
      -- the fused Conv2d + ReLU of Sequential: the forward's bias + ReLU
      -- pass and the backward's masked gather and bias gradient
      for _, c in ipairs(CONV) do
        local name, xs, ws, bias, stride, padding, dilation, groups = table.unpack(c)
        local fused = function(x, w, b)
          return F._conv2d_relu(x, w, b, stride or 1, padding or 0, dilation or 1, groups or 1)
        end
        local b = bias and rnd({ws[1]}) or nil
        parity("conv2d_relu " .. name, fused, table.pack(rnd(xs), rnd(ws), b))
        parity("conv2d_relu " .. name .. " gradient", fused, table.pack(rnd(xs), rnd(ws), b), {grad = true})
      end
      parity("conv2d of a non-contiguous input", function(x, w) return F.conv2d(x:transpose(3, 4), w) end,
             {rnd({2, 3, 6, 7}), rnd({4, 3, 3, 3})}, {grad = true})
      parity("conv2d_backward called directly", function(gy, x, w)
        return ember.conv2d_backward(gy, x, w, 2, 1, 1, 1)
      end, {rnd({2, 4, 4, 4}), rnd({2, 3, 8, 8}), rnd({4, 3, 3, 3})})
      same_error("conv2d channel mismatch", function(x, w) return F.conv2d(x, w) end,
                 {rnd({2, 4, 6, 6}), rnd({3, 2, 3, 3})})
      same_error("conv2d kernel larger than the input", function(x, w) return F.conv2d(x, w) end,
                 {rnd({1, 1, 6, 6}), rnd({1, 1, 7, 7})})
    end)

    it("max_pool2d: windows, padding, dilation, ceil_mode, indices, ties, NaN; its gradient", function()
      ember.manual_seed(19)
      local POOL = {
        {"2x2", 2},
        {"3x3 stride 2 padding 1", 3, 2, 1},
        {"3x3 stride 1 padding 1 dilation 2", 3, 1, 1, 2},
        {"2x3 stride (2,1) padding (1,0)", {2, 3}, {2, 1}, {1, 0}},
        {"3x3 stride 2 ceil_mode", 3, 2, 0, 1, true},
        {"2x2 stride 2 padding 1 ceil_mode", 2, 2, 1, 1, true},
      }
      for _, p in ipairs(POOL) do
        local name, k, s, pad, dil, ceil = table.unpack(p)
        local pool = function(x) return F.max_pool2d(x, k, s, pad, dil, ceil, true) end
        parity("max_pool2d " .. name, pool, {rnd({2, 3, 9, 9})})
        parity("max_pool2d " .. name .. " float64", pool, {rnd({2, 3, 9, 8}, "float64")})
        parity("max_pool2d " .. name .. " unbatched", pool, {rnd({3, 8, 9})})
        parity("max_pool2d " .. name .. " with ties", pool,
               {ember.randint(0, 2, {2, 2, 9, 9}):float()})
        parity("max_pool2d " .. name .. " gradient",
               function(x) return F.max_pool2d(x, k, s, pad, dil, ceil) end,
               {rnd({2, 3, 9, 9})}, {grad = true})
      end
      local nan = rnd({1, 1, 6, 6})
      nan[1][1][2][3] = NAN
      nan[1][1][5][5] = NAN
      nan[1][1][6][1] = -INF
      parity("max_pool2d with NaN and -inf", function(x) return F.max_pool2d(x, 2, 2, 0, 1, false, true) end,
             {nan})
      parity("max_pool2d of a non-contiguous input", function(x)
        return F.max_pool2d(x:transpose(3, 4), 2, 2, 0, 1, false, true)
      end, {rnd({2, 3, 8, 10})}, {grad = true})
      parity("max_pool2d the CNN's pools", function(x) return F.max_pool2d(x, 2) end,
             {rnd({32, 32, 26, 26})})
      parity("max_pool2d_backward called directly", function(gy, x, i)
        return ember.max_pool2d_backward(gy, x, i)
      end, {rnd({1, 1, 2, 2}), rnd({1, 1, 4, 4}), ember.tensor({{{{1, 4}, {9, 16}}}}, {dtype = "int64"})})
      for _, bad in ipairs{0, 17, -3} do
        same_error("max_pool2d_backward with index " .. bad, function(gy, x, i)
          return ember.max_pool2d_backward(gy, x, i)
        end, {rnd({1, 1, 2, 2}), rnd({1, 1, 4, 4}), ember.tensor({{{{1, bad}, {9, 16}}}}, {dtype = "int64"})})
      end
    end)

    it("avg_pool2d: windows, padding, ceil_mode, count_include_pad; its gradient", function()
      ember.manual_seed(20)
      local POOL = {
        {"2x2", 2},
        {"3x3 stride 2 padding 1", 3, 2, 1},
        {"3x3 stride 2 padding 1 without the padding", 3, 2, 1, false, false},
        {"3x3 stride 2 padding 1 ceil_mode", 3, 2, 1, true},
        {"3x3 stride 2 padding 1 ceil_mode without the padding", 3, 2, 1, true, false},
        {"3x2 stride (1,2)", {3, 2}, {1, 2}},
      }
      for _, p in ipairs(POOL) do
        local name, k, s, pad, ceil, cip = table.unpack(p)
        if cip == nil then cip = true end
        local pool = function(x) return F.avg_pool2d(x, k, s, pad, ceil, cip) end
        parity("avg_pool2d " .. name, pool, {rnd({2, 3, 9, 9})})
        parity("avg_pool2d " .. name .. " float64", pool, {rnd({2, 3, 8, 9}, "float64")})
        parity("avg_pool2d " .. name .. " unbatched", pool, {rnd({3, 9, 8})})
        parity("avg_pool2d " .. name .. " gradient", pool, {rnd({2, 3, 9, 9})}, {grad = true})
      end
      parity("avg_pool2d of a non-contiguous input", function(x)
        return F.avg_pool2d(x:transpose(3, 4), 2)
      end, {rnd({2, 3, 8, 10})}, {grad = true})
    end)
  end)

  -- }====================================================================

  -- {====================================================================
  -- Random numbers
  -- =====================================================================

  describe("random numbers", function()
    --- Draw with mk(opts, on_device) on the CPU and on the device from the
    -- same seed (after `skip` draws), then one more draw on the CPU after
    -- each: the numbers and the counter must be the same.  opts is a fresh
    -- options table ({device = ...}) that mk may add a dtype to.
    local function same_draws(what, mk, tol, skip)
      for _, seed in ipairs{0, 42, 0x7fffffff12345} do
        ember.manual_seed(seed)
        if skip then ember.rand(skip) end
        local c = mk({device = "cpu"}, false)
        local after_c = ember.rand(5)
        ember.manual_seed(seed)
        if skip then ember.rand(skip) end
        local g = mk({device = DEV}, true)
        local after_g = ember.rand(5)
        assert_match(("%s, seed %d"):format(what, seed), g, c, tol)
        assert(after_g:equal(after_c), what .. ": the draw advanced the counter differently")
      end
    end

    it("rand, randn, randint and the *_like forms draw the CPU's numbers", function()
      for _, n in ipairs{1, 3, 5, 1000, 100003} do
        same_draws("rand " .. n, function(o) return ember.rand(n, o) end, 0)
        same_draws("rand float64 " .. n, function(o)
          o.dtype = "float64"; return ember.rand(n, o)
        end, 0)
        -- Box-Muller goes through log, sqrt and cos: CUDA's may differ from
        -- the C library's by an ulp
        same_draws("randn " .. n, function(o) return ember.randn(n, o) end, 1e-6)
        same_draws("randn float64 " .. n, function(o)
          o.dtype = "float64"; return ember.randn(n, o)
        end, 1e-13)
        same_draws("randint(1, 6) " .. n, function(o) return ember.randint(1, 6, {n}, o) end, 0)
      end
      same_draws("rand [3,0]", function(o) return ember.rand({3, 0}, o) end, 0)
      same_draws("rand 0-d", function(o) return ember.rand({}, o) end, 0)
      same_draws("rand [7,3] after 7 draws", function(o) return ember.rand(7, 3, o) end, 0, 7)
      same_draws("randn [7,3] after 3 draws", function(o) return ember.randn(7, 3, o) end, 1e-6, 3)
      same_draws("randint(-5, 5) int32", function(o)
        o.dtype = "int32"; return ember.randint(-5, 5, {999}, o)
      end, 0, 1)
      same_draws("randint(0, 255) uint8", function(o)
        o.dtype = "uint8"; return ember.randint(0, 255, {1000}, o)
      end, 0)
      same_draws("randint(1, 10) float32", function(o)
        o.dtype = "float32"; return ember.randint(1, 10, {1000}, o)
      end, 0)
      same_draws("randint over a huge range", function(o)
        return ember.randint(-(1 << 62), 1 << 62, {1000}, o)
      end, 0)
      local cz, gz = ember.zeros(4, 5), to_dev(ember.zeros(4, 5))
      same_draws("rand_like", function(_, dev) return (dev and gz or cz):rand_like() end, 0)
      same_draws("randn_like", function(_, dev) return (dev and gz or cz):randn_like() end, 1e-6)
      same_draws("randint_like", function(_, dev) return (dev and gz or cz):randint_like(1, 9) end, 0)
    end)

    it("ember.cuda.manual_seed seeds the same generator", function()
      ember.cuda.manual_seed(99)
      local g = ember.rand(100, {device = DEV})
      ember.manual_seed(99)
      local c = ember.rand(100)
      assert_match("rand after ember.cuda.manual_seed", g, c, 0)
    end)

    it("dropout draws the CPU's mask", function()
      local x = rnd({64, 100})
      for _, p in ipairs{0.1, 0.5, 0.9} do
        ember.manual_seed(5)
        local c = F.dropout(x, p, true)
        ember.manual_seed(5)
        local g = F.dropout(to_dev(x), p, true)
        assert_match("dropout p = " .. p, g, c, 0)
      end
    end)
  end)

  -- }====================================================================

  -- {====================================================================
  -- Optimizers
  -- =====================================================================

  describe("optimizers", function()
    local CASES = {
      {"SGD", {lr = 0.1}},
      {"SGD", {lr = 0.1, momentum = 0.9}},
      {"SGD", {lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.01}},
      {"SGD", {lr = 0.1, momentum = 0.9, dampening = 0.2, maximize = true}},
      {"Adam", {lr = 1e-2}},
      {"Adam", {lr = 1e-2, weight_decay = 0.1, betas = {0.8, 0.99}, eps = 1e-6}},
      {"Adam", {lr = 1e-2, amsgrad = true}},
      {"Adam", {lr = 1e-2, amsgrad = true, maximize = true}},
      {"AdamW", {lr = 1e-2}},
      {"AdamW", {lr = 1e-2, weight_decay = 0.1, amsgrad = true}},
      {"RMSprop", {lr = 1e-2}},
      {"RMSprop", {lr = 1e-2, momentum = 0.9}},
      {"RMSprop", {lr = 1e-2, momentum = 0.9, centered = true, weight_decay = 0.1}},
      {"Adagrad", {lr = 0.1}},
      {"Adagrad", {lr = 0.1, lr_decay = 0.01, weight_decay = 0.1, initial_accumulator_value = 0.1}},
    }

    local function describe_opts(o)
      local keys = {}
      for k in pairs(o) do keys[#keys + 1] = k end
      table.sort(keys)
      for i, k in ipairs(keys) do
        local v = o[k]
        keys[i] = k .. "=" .. (type(v) == "table" and "{" .. table.concat(v, ",") .. "}" or tostring(v))
      end
      return table.concat(keys, " ")
    end

    for _, dt in ipairs{"float32", "float64"} do
      it("3 steps of every optimizer match the CPU's (" .. dt .. ")", function()
        ember.manual_seed(21)
        local shapes = {{3, 4}, {5}, {2, 3, 2}}
        local init, grads = {}, {}
        for i, s in ipairs(shapes) do init[i] = rnd(s, dt) end
        for step = 1, 3 do
          grads[step] = {}
          for i, s in ipairs(shapes) do grads[step][i] = rnd(s, dt) end
        end
        for _, case in ipairs(CASES) do
          local what = ("%s{%s} %s"):format(case[1], describe_opts(case[2]), dt)
          local function run_on(copy)
            local ps = {}
            for i, t in ipairs(init) do ps[i] = copy(t):requires_grad_(true) end
            local opts = {}
            for k, v in pairs(case[2]) do opts[k] = v end
            local opt = ember.optim[case[1]](ps, opts)
            for step = 1, 3 do
              for i, p in ipairs(ps) do p.grad = copy(grads[step][i]) end
              opt:step()
            end
            return ps, opt
          end
          local pc, oc = run_on(function(t) return t:clone() end)
          local pg, og = run_on(to_dev)
          for i = 1, #pc do
            assert_match(("%s: parameter %d"):format(what, i), pg[i]:detach(), pc[i]:detach())
            local sc, sg = oc.state[pc[i]], og.state[pg[i]]
            for k, v in pairs(sc) do
              if ember.is_tensor(v) then
                assert(ember.is_tensor(sg[k]), what .. ": state " .. k .. " missing on " .. DEV)
                assert_match(("%s: parameter %d state %s"):format(what, i, k), sg[k], v)
              else
                assert.are.equal(v, sg[k], what .. ": state " .. k)
              end
            end
          end
        end
      end)
    end

    it("the fused steps raise the CPU's errors", function()
      same_error("_sgd_step with a grad of another shape", function(p, g)
        return ember._sgd_step(p, g, nil, 0.1, 0, 0, 0, false, false, false)
      end, {rnd({3}), rnd({4})})
    end)
  end)

  -- }====================================================================

  -- {====================================================================
  -- Layers and losses (through autograd, on modules moved to the device)
  -- =====================================================================

  describe("layers and losses", function()
    --- Forward and backward of a module built on the CPU and a copy moved
    -- to the device: outputs, every parameter's grad and every buffer.
    local function module_parity(what, make, x, opts)
      opts = opts or {}
      ember.manual_seed(22)
      local mc = make()
      local mg = make()
      mg:load_state_dict(mc:state_dict())
      module_to_dev(mg)
      if opts.eval then mc:eval(); mg:eval() end
      for _, p in ipairs(mg:parameters()) do
        assert.are.equal(DEV, p.device, what .. ": a parameter stayed on " .. p.device)
      end
      local yc, yg = mc(x), mg(to_dev(x))
      assert_match(what .. ": output", yg, yc, opts.tol)
      if is_float(yc) and yc.requires_grad then
        local v = ember.randn(yc:shape())
        local lc = (yc * v):sum()
        lc:backward()
        local lg = (yg * to_dev(v)):sum()
        lg:backward()
        local gp = {}
        for name, p in mg:named_parameters() do gp[name] = p end
        for name, p in mc:named_parameters() do
          assert(gp[name].grad ~= nil, what .. ": no grad for " .. name .. " on " .. DEV)
          assert_match(what .. ": grad of " .. name, gp[name].grad, p.grad, opts.tol)
        end
      end
      local bg = {}
      for name, b in mg:named_buffers() do bg[name] = b end
      for name, b in mc:named_buffers() do
        assert_match(what .. ": buffer " .. name, bg[name], b, opts.tol)
      end
    end

    it("Linear, Conv2d, pools, BatchNorm, LayerNorm, Embedding, Dropout, activations", function()
      ember.manual_seed(23)
      module_parity("Linear", function() return nn.Linear(7, 5) end, rnd({4, 7}))
      module_parity("Linear without bias, 3-d input", function() return nn.Linear(7, 5, {bias = false}) end,
                    rnd({2, 3, 7}))
      module_parity("Conv2d", function() return nn.Conv2d(3, 4, 3, {stride = 2, padding = 1}) end,
                    rnd({2, 3, 9, 9}))
      module_parity("MaxPool2d", function() return nn.Sequential{nn.Conv2d(2, 2, 1), nn.MaxPool2d(2)} end,
                    rnd({2, 2, 7, 7}))
      module_parity("AvgPool2d", function()
        return nn.Sequential{nn.Conv2d(2, 2, 1), nn.AvgPool2d(3, 2, 1)}
      end, rnd({2, 2, 7, 7}))
      module_parity("BatchNorm2d (training: batch stats, running stats)",
                    function() return nn.BatchNorm2d(3) end, rnd({4, 3, 5, 5}) * 2 + 1)
      module_parity("BatchNorm2d (eval)", function()
        local m = nn.BatchNorm2d(3)
        ember.no_grad(function()
          m.running_mean:copy(ember.tensor({0.5, -1, 2}))
          m.running_var:copy(ember.tensor({1.5, 0.5, 3}))
        end)
        return m
      end, rnd({4, 3, 5, 5}), {eval = true})
      module_parity("BatchNorm1d", function() return nn.BatchNorm1d(6) end, rnd({8, 6}))
      module_parity("LayerNorm", function() return nn.LayerNorm({4, 5}) end, rnd({3, 4, 5}))
      module_parity("Embedding", function() return nn.Embedding(10, 4) end,
                    ember.tensor({{1, 10, 3}, {3, 3, 7}}, {dtype = "int64"}))
      module_parity("Embedding with padding_idx", function() return nn.Embedding(10, 4, {padding_idx = 2}) end,
                    ember.tensor({2, 5, 2, 9}, {dtype = "int64"}))
      module_parity("Dropout (eval)", function() return nn.Dropout(0.5) end, rnd({4, 5}), {eval = true})
      module_parity("activations", function()
        return nn.Sequential{nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6), nn.LeakyReLU(0.1),
                             nn.Linear(6, 6), nn.GELU(), nn.Linear(6, 6), nn.Sigmoid(),
                             nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Softmax(2),
                             nn.Linear(6, 6), nn.LogSoftmax(2)}
      end, rnd({5, 6}))
      module_parity("the DESIGN.md CNN", function()
        return nn.Sequential{
          nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
          nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
          nn.Conv2d(64, 64, 3), nn.ReLU(),
          nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10),
        }
      end, ember.rand(4, 1, 28, 28))
      same_error("Embedding index out of range", function(w, i) return F.embedding(i, w) end,
                 {rnd({10, 4}), ember.tensor({1, 11}, {dtype = "int64"})})
      same_error("Embedding index 0", function(w, i) return F.embedding(i, w) end,
                 {rnd({10, 4}), ember.tensor({0, 1}, {dtype = "int64"})})
    end)

    it("every loss, its reductions and options, and its gradient", function()
      ember.manual_seed(24)
      local x, y = rnd({6, 5}) * 2, ember.randint(1, 5, {6})
      local w = rnd({5}):abs() + 0.5
      local yi = ember.tensor({1, 5, -100, 2, 3, -100}, {dtype = "int64"})
      local probs = rnd({6, 5}):softmax(2)
      local z, t = rnd({4, 3}), ember.rand(4, 3)
      local tb = ember.randint(0, 1, {4, 3}):float()
      for _, red in ipairs{"mean", "sum", "none"} do
        local o = {reduction = red}
        parity("cross_entropy " .. red, function(a, b) return F.cross_entropy(a, b, o) end,
               {x, y}, {grad = {true}})
        parity("cross_entropy weight, ignore_index, label_smoothing " .. red, function(a, b, c)
          return F.cross_entropy(a, b, {reduction = red, weight = c, ignore_index = -100,
                                        label_smoothing = 0.1})
        end, {x, yi, w}, {grad = {true}})
        parity("cross_entropy with class probabilities " .. red,
               function(a, b) return F.cross_entropy(a, b, o) end, {x, probs}, {grad = {true}})
        parity("nll_loss " .. red, function(a, b) return F.nll_loss(a:log_softmax(2), b, o) end,
               {x, y}, {grad = {true}})
        parity("mse_loss " .. red, function(a, b) return F.mse_loss(a, b, o) end, {z, t}, {grad = true})
        parity("l1_loss " .. red, function(a, b) return F.l1_loss(a, b, o) end, {z, t}, {grad = true})
        parity("smooth_l1_loss " .. red, function(a, b)
          return F.smooth_l1_loss(a, b, {reduction = red, beta = 0.5})
        end, {z, t}, {grad = true})
        parity("binary_cross_entropy " .. red, function(a, b)
          return F.binary_cross_entropy(a:sigmoid(), b, o)
        end, {z, tb}, {grad = {true}})
        parity("binary_cross_entropy_with_logits " .. red, function(a, b, c)
          return F.binary_cross_entropy_with_logits(a, b, {reduction = red, pos_weight = c})
        end, {z, tb, rnd({3}):abs() + 0.5}, {grad = {true}})
      end
      parity("cross_entropy of a batch of 1000", function(a, b) return F.cross_entropy(a, b) end,
             {rnd({1000, 10}) * 3, ember.randint(1, 10, {1000})}, {grad = {true}})
      same_error("cross_entropy with a class out of range", function(a, b) return F.cross_entropy(a, b) end,
                 {x, ember.tensor({1, 2, 3, 4, 5, 6}, {dtype = "int64"})})
      same_error("cross_entropy with class 0", function(a, b) return F.cross_entropy(a, b) end,
                 {x, ember.tensor({1, 2, 0, 4, 5, 1}, {dtype = "int64"})})
    end)
  end)

  -- }====================================================================

  -- {====================================================================
  -- Copies, conversions, creation
  -- =====================================================================

  describe("copies, conversions and creation", function()
    it("converts between every pair of dtypes exactly as the CPU", function()
      local src = {
        float32 = ember.tensor({0, -0.0, 1.7, -1.7, 255.9, -2.5, 1e9, 3e9, -3e9, 0.4}),
        float64 = ember.tensor({0, -0.0, 1.7, -1.7, 255.9, -2.5, 1e9, 1e18, -1e18, 0.4},
                               {dtype = "float64"}),
        int32 = ember.tensor({0, -1, 2147483647, -2147483648, 255, 256, 16777217, 7, -7, 1},
                             {dtype = "int32"}),
        int64 = ember.tensor({0, -1, math.maxinteger, math.mininteger, 255, 256, (1 << 53) + 1,
                              1 << 31, -(1 << 31), 1}, {dtype = "int64"}),
        uint8 = ember.tensor({0, 1, 127, 128, 255, 254, 2, 3, 100, 200}, {dtype = "uint8"}),
        bool = ember.tensor({true, false, true, true, false, false, true, false, true, true}),
      }
      -- floats out of an integer's range saturate, NaN becomes 0 (core/cpu/elementwise.c)
      local wild = {0 / 0, INF, -INF, 1e10, -1e10, 3e9, -3e9, 256.5, -0.5, 9.3e18, -9.3e18, 2147483647.5}
      for _, dt in ipairs{"float32", "float64"} do
        for _, to in ipairs{"int32", "int64", "uint8", "bool"} do
          parity(("%s -> %s out of range"):format(dt, to), function(a) return a:to(to) end,
                 {ember.tensor(wild, {dtype = dt})})
        end
      end
      for _, from in ipairs(DTYPES) do
        for _, to in ipairs(DTYPES) do
          local t = src[from]
          parity(("%s -> %s"):format(from, to), function(a) return a:to(to) end, {t})
          parity(("%s -> %s of a view"):format(from, to), function(a)
            return a:view(2, 5):t():to(to)
          end, {t})
          parity(("copy_ %s into %s"):format(from, to), function(a, d)
            d:copy_(a); return d
          end, {t, ember.zeros(10, {dtype = to})})
        end
      end
    end)

    it("copies and fills through views, broadcast copies, clone, contiguous", function()
      ember.manual_seed(25)
      parity("copy_ broadcast", function(d, s) d:copy_(s); return d end, {rnd({3, 4}), rnd({4})})
      parity("copy_ into a transposed view", function(d, s) d:t():copy_(s); return d end,
             {rnd({4, 3}), rnd({3, 4})})
      parity("copy_ from an expanded view", function(d, s) d:copy_(s:expand(3, 4)); return d end,
             {rnd({3, 4}), rnd({3, 1})})
      parity("copy_ large, permuted", function(d, s) d:copy_(s:permute(3, 1, 2)); return d end,
             {rnd({64, 32, 48}), rnd({32, 48, 64})})
      parity("fill_ through a narrow", function(d) d:narrow(2, 2, 2):fill_(7); return d end,
             {rnd({3, 5})})
      parity("fill_ int64 with a big integer", function(d) d:fill_(math.maxinteger); return d end,
             {rnd({4}, "int64")})
      parity("zero_", function(d) d:zero_(); return d end, {rnd({3, 3})})
      parity("t[i] = v, t[i] = tensor", function(d, s)
        d[2] = 5; d[3] = s; return d
      end, {rnd({4, 3}), rnd({3})})
      parity("clone and contiguous of views", function(a)
        return a:t():clone(), a:t():contiguous(), a:narrow(1, 2, 2):contiguous()
      end, {rnd({4, 5})})
      parity("reshape of a non-contiguous view", function(a) return a:t():reshape(-1) end,
             {rnd({4, 5})})
      same_error("copy_ of an unbroadcastable shape", function(d, s) d:copy_(s); return d end,
                 {rnd({2, 2}), rnd({3})})
    end)

    it("creates tensors on the device like the CPU", function()
      local o = {device = DEV}
      local function same(what, mk)
        local c = mk({device = "cpu"})
        local g = mk({device = DEV})
        assert_match(what, g, c)
      end
      same("zeros", function(p) return ember.zeros(2, 3, p) end)
      same("ones int32", function(p) p.dtype = "int32"; return ember.ones(4, p) end)
      same("full", function(p) return ember.full({2, 2}, 7.5, p) end)
      same("full int64", function(p) p.dtype = "int64"; return ember.full({3}, 2.7, p) end)
      same("full bool", function(p) p.dtype = "bool"; return ember.full({3}, 1, p) end)
      same("arange", function(p) return ember.arange(0, 100003, 1, p) end)
      same("arange float steps", function(p) return ember.arange(0, 1, 0.1, p) end)
      same("arange float64 downwards", function(p) p.dtype = "float64"; return ember.arange(3, 0, -0.25, p) end)
      same("linspace", function(p) return ember.linspace(-1, 1, 101, p) end)
      same("eye", function(p) return ember.eye(3, 5, p) end)
      same("zeros 0-d", function(p) return ember.zeros({}, p) end)
      same("ones empty", function(p) return ember.ones(0, 4, p) end)
      assert.are.equal(DEV, ember.empty(3, o).device)
      local g = to_dev(ember.ones(2, 2))
      for _, fn in ipairs{"zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"} do
        assert.are.equal(DEV, g[fn](g).device, fn .. " keeps the device")
      end
      assert.are.equal(DEV, ember.full_like(g, 3).device, "full_like keeps the device")
    end)
  end)

  -- }====================================================================

  describe("autograd on the device", function()
    it("keeps grads on the parameter's device and accumulates them", function()
      ember.manual_seed(26)
      local w = to_dev(rnd({3, 3})):requires_grad_(true)
      local x = to_dev(rnd({4, 3}))
      for _ = 1, 2 do
        local loss = (x:matmul(w):relu() * 2):sum()
        loss:backward()
      end
      assert.are.equal(DEV, w.grad.device)
      local wc = w:detach():cpu():clone():requires_grad_(true)
      local xc = x:cpu()
      for _ = 1, 2 do
        local loss = (xc:matmul(wc):relu() * 2):sum()
        loss:backward()
      end
      assert_match("accumulated grad", w.grad, wc.grad)
    end)

    it("retain_graph, non-leaf grads, detach, no_grad", function()
      ember.manual_seed(27)
      parity("a chain with retain_grad", function(a, b)
        local h = (a * b):tanh()
        h:retain_grad()
        local out = (h:exp() + a:sigmoid()):sum(2)
        return out
      end, {rnd({3, 4}), rnd({3, 4})}, {grad = true})
      local a = to_dev(rnd({3})):requires_grad_(true)
      local y = ember.no_grad(function() return a * 2 end)
      assert.is_false(y.requires_grad)
      assert.are.equal(DEV, a:detach().device)
    end)
  end)
end)
