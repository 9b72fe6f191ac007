--- ember.autograd: differentiable functions written in Lua
-- (ember.autograd.Function, as torch.autograd.Function) and activation
-- checkpointing (ember.checkpoint, as torch.utils.checkpoint).  Both are
-- one core node whose backward calls back into Lua: the binding
-- ember._function_apply over the core's ember_function_apply
-- (core/autograd.c; docs/internals.md, "Custom functions").
local ember = require "ember"
local check = require "ember.check"

local apply = ember._function_apply
ember._function_apply = nil   -- the public forms are below

local is_tensor = ember.is_tensor

local M = {}

-- {====== Function ======

local Function = {}
Function.__index = Function

--- The tensor arguments of an argument list: their positions and the
-- tensors, in order (what the node's inputs and saved tensors are made of).
local function tensor_args(args)
  local pos, ts = {}, {n = 0}
  for i = 1, args.n do
    if is_tensor(args[i]) then
      pos[#pos + 1] = i
      ts.n = ts.n + 1
      ts[ts.n] = args[i]
    end
  end
  return pos, ts
end

--- A result given back as a node's output must be a tensor of its own:
-- an input returned as it is (or a tensor already in a graph) becomes a
-- detached alias, as PyTorch's outputs are new tensor objects.
local function own_output(t)
  return t:detach()
end

--- ember.autograd.Function{forward = fn, backward = fn [, name = s]}:
-- forward(ctx, ...) computes the results from the arguments with grad
-- mode off; backward(ctx, g1, g2, ...) gets one gradient a tensor result
-- (zeros where none reached it) and returns one gradient an argument (nil
-- for none or for a non-tensor argument).  ctx:save_for_backward(...)
-- keeps tensors for backward (ctx.saved_tensors); an in-place change of
-- one before the backward is an error.  Other values can be put in ctx.
function M.Function(def)
  if type(def) ~= "table" or is_tensor(def) then
    error(("Function: expected a table {forward = fn, backward = fn}, got %s")
          :format(check.type_name(def)), 2)
  end
  check.options("Function", def, {forward = true, backward = true, name = true}, 2)
  for _, k in ipairs{"forward", "backward"} do
    if type(def[k]) ~= "function" then
      error(("Function: %s must be a function, got %s"):format(k, check.type_name(def[k])), 2)
    end
  end
  if def.name ~= nil and type(def.name) ~= "string" then
    error(("Function: name must be a string, got %s"):format(check.type_name(def.name)), 2)
  end
  return setmetatable({forward = def.forward, backward = def.backward,
                       name = def.name or "FunctionBackward"}, Function)
end

local Ctx = {}
Ctx.__index = Ctx

--- ctx:save_for_backward(...): the tensors backward reads as
-- ctx.saved_tensors (nil arguments keep their place).
function Ctx:save_for_backward(...)
  local s = table.pack(...)
  for i = 1, s.n do
    if s[i] ~= nil and not is_tensor(s[i]) then
      error(("save_for_backward: argument %d is a %s, not a tensor")
            :format(i, check.type_name(s[i])), 2)
    end
  end
  rawset(self, "_to_save", s)
end

--- F:apply(...) (or F(...)): forward's results, attached to one node
-- when grad mode is on and a tensor argument requires grad.
function Function:apply(...)
  local args = table.pack(...)
  local pos, inputs = tensor_args(args)
  local needs = {}
  for k, p in ipairs(pos) do needs[p] = inputs[k].requires_grad end
  local ctx = setmetatable({needs_input_grad = needs}, Ctx)
  local res = table.pack(ember.no_grad(self.forward, ctx, ...))
  local outs = {n = 0}
  for i = 1, res.n do
    if is_tensor(res[i]) then
      res[i] = own_output(res[i])
      outs.n = outs.n + 1
      outs[outs.n] = res[i]
    end
  end
  local saved = rawget(ctx, "_to_save") or {n = 0}
  rawset(ctx, "_to_save", nil)   -- the node keeps them, and frees them
  local backward, nargs = self.backward, args.n
  local function node_backward(gouts, saved_now)
    local g = {}
    for i = 1, gouts.n do g[i] = gouts[i] or nil end
    ctx.saved_tensors = {}
    for i = 1, saved_now.n do ctx.saved_tensors[i] = saved_now[i] or nil end
    local r = table.pack(backward(ctx, table.unpack(g, 1, gouts.n)))
    ctx.saved_tensors = nil
    if r.n > nargs then
      error(("%s: backward returned %d gradients, but forward took %d arguments")
            :format(self.name, r.n, nargs), 0)
    end
    local gin = {}
    for k, p in ipairs(pos) do gin[k] = r[p] or false end
    return gin
  end
  if outs.n > 0 then apply(self.name, inputs, saved, outs, node_backward) end
  return table.unpack(res, 1, res.n)
end

Function.__call = Function.apply

-- }======

-- {====== checkpoint ======

--- The tensors of fn's results, in an order both runs share: several
-- results, or one table of tensors (its keys sorted, numbers first).
local function key_before(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta == "number" end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function result_tensors(res)
  local list, where = {}, {}
  if res.n == 1 and type(res[1]) == "table" and not is_tensor(res[1]) then
    local keys = {}
    for k, v in pairs(res[1]) do
      if is_tensor(v) then keys[#keys + 1] = k end
    end
    table.sort(keys, key_before)
    for i, k in ipairs(keys) do list[i], where[i] = res[1][k], {res[1], k} end
  else
    for i = 1, res.n do
      if is_tensor(res[i]) then
        list[#list + 1] = res[i]
        where[#where + 1] = {res, i}
      end
    end
  end
  return list, where
end

local function shape_str(t)
  return "[" .. table.concat(t:shape(), ", ") .. "]"
end

local CHECKPOINT_OPTIONS = {1, "preserve_rng_state"}

--- ember.checkpoint(fn, ...) or ember.checkpoint({fn, preserve_rng_state =
-- false}, ...): fn(...)'s results, computed without keeping fn's
-- intermediate activations; backward reruns fn (see docs/lua-api.md).
function M.checkpoint(fn, ...)
  local preserve = true
  if type(fn) == "table" and not is_tensor(fn) and getmetatable(fn) == nil then
    check.options("checkpoint", fn, CHECKPOINT_OPTIONS, 2)
    if fn.preserve_rng_state ~= nil then
      if type(fn.preserve_rng_state) ~= "boolean" then
        error(("checkpoint: preserve_rng_state must be a boolean, got %s")
              :format(check.type_name(fn.preserve_rng_state)), 2)
      end
      preserve = fn.preserve_rng_state
    end
    fn = fn[1]
  end
  local mt = getmetatable(fn)
  if type(fn) ~= "function" then
    if not (mt and mt.__call) then
      error(("checkpoint: expected a function (or a callable), got %s")
            :format(check.type_name(fn)), 2)
    end
    local callable = fn   -- a module: no_grad and enable_grad take functions
    fn = function(...) return callable(...) end
  end
  -- nothing is recorded anyway: no rerun to prepare
  if not ember.is_grad_enabled() then return fn(...) end

  local args = table.pack(...)
  local pos, inputs = tensor_args(args)
  local rng = preserve and ember.get_rng_state() or nil
  local res = table.pack(ember.no_grad(fn, ...))
  local outs, where = result_tensors(res)
  if #outs == 0 then return table.unpack(res, 1, res.n) end
  for i, t in ipairs(outs) do
    outs[i] = own_output(t)
    where[i][1][where[i][2]] = outs[i]
  end
  outs.n = #outs
  local nouts = #outs
  local out_shapes = {}
  for i, t in ipairs(outs) do out_shapes[i] = shape_str(t) end
  -- fn may use parameters it closes over while no argument requires grad
  -- (the first block of a network fed plain data): a leaf that requires
  -- grad keeps the node recorded so that their gradients still flow.
  local node_inputs = inputs
  local any = false
  for k = 1, inputs.n do any = any or inputs[k].requires_grad end
  if not any then
    node_inputs = {n = inputs.n + 1, table.unpack(inputs, 1, inputs.n)}
    node_inputs[node_inputs.n] = ember.zeros(1):requires_grad_()
  end
  -- the rerun takes the saved tensors: drop the argument list's own
  -- references, which would keep the inputs alive after the node dies
  for _, p in ipairs(pos) do args[p] = false end

  local function rerun(gouts, saved, needs)
    local a, det = table.move(args, 1, args.n, 1, {}), {}
    for k, p in ipairs(pos) do
      if needs[k] then
        det[k] = saved[k]:detach():requires_grad_()
        a[p] = det[k]
      else
        a[p] = saved[k]
      end
    end
    local now = preserve and ember.get_rng_state() or nil
    if preserve then ember.set_rng_state(rng) end
    local ok, r = pcall(function()
      return table.pack(ember.enable_grad(fn, table.unpack(a, 1, args.n)))
    end)
    if preserve then ember.set_rng_state(now) end
    if not ok then error(r, 0) end
    local ys = result_tensors(r)
    if #ys ~= nouts then
      error(("checkpoint: fn returned %d tensors when rerun in backward but %d in "
             .. "the forward (fn must be deterministic)"):format(#ys, nouts), 0)
    end
    local root, grad
    for i, y in ipairs(ys) do
      if shape_str(y) ~= out_shapes[i] then
        error(("checkpoint: fn's result %d has shape %s when rerun in backward but "
               .. "%s in the forward (fn must be deterministic)")
              :format(i, shape_str(y), out_shapes[i]), 0)
      end
      if gouts[i] and y.requires_grad then
        if root == nil then
          root, grad = y, gouts[i]
        else
          -- several results: one backward of sum(y_i * g_i) gives every
          -- input the sum of their gradients
          -- (recorded: the callback runs with grad mode off)
          root = ember.enable_grad(function()
            local r = grad and (root * grad):sum() or root
            return r + (y * gouts[i]):sum()
          end)
          grad = nil
        end
      end
    end
    if root then
      if grad then root:backward(grad) else root:backward() end
    end
    local gin = {}
    for k = 1, inputs.n do gin[k] = det[k] and det[k].grad or false end
    return gin
  end
  apply("CheckpointBackward", node_inputs, inputs, outs, rerun)
  return table.unpack(res, 1, res.n)
end

-- }======

ember.autograd = M
ember.checkpoint = M.checkpoint

return true
