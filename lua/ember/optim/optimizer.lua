--- ember.optim.optimizer: the base class of the optimizers (internal;
-- users see it through optim.SGD, optim.Adam, ...).
--
-- As torch.optim.Optimizer: an optimizer holds `param_groups` (plain
-- tables: `params`, a list of tensors, plus every option, so a scheduler
-- can write `group.lr`), `defaults` (the options a new group starts from)
-- and `state` (per parameter, keyed by the tensor).  A class supplies its
-- option names, defaults, a check of a group's options and `_update`,
-- which runs one fused C step (ember._sgd_step, ...) for one parameter:
-- the arithmetic never happens in Lua.
local ember = require "ember"
local check = require "ember.check"

local Optimizer = {__name = "Optimizer"}
Optimizer.__index = Optimizer

-- {======================================================================
-- Errors and checks
-- =======================================================================

--- Raise msg blaming the first caller outside ember.optim's files, so the
-- position points at the user's line however deep the check sits.
local fail = require("ember.blame").failer("ember/optim/")
Optimizer.fail = fail

--- "number", "tensor", "table", ... for messages.
local function kind(v)
  return ember.is_tensor(v) and "tensor" or type(v)
end

--- Check group[key] is a number >= lo (NaN fails).
function Optimizer.check_min(name, group, key, lo)
  local v = group[key]
  if type(v) ~= "number" then
    fail(("%s: %s must be a number, got %s"):format(name, key, kind(v)))
  end
  if not (v >= lo) then fail(("%s: %s must be >= %s, got %s"):format(name, key, lo, v)) end
end

--- Check v is in [0, 1); `what` names it.
function Optimizer.check_unit(name, what, v)
  if type(v) ~= "number" then
    fail(("%s: %s must be a number, got %s"):format(name, what, kind(v)))
  end
  if not (v >= 0 and v < 1) then
    fail(("%s: %s must be in [0, 1), got %s"):format(name, what, v))
  end
end

function Optimizer.check_bool(name, group, key)
  if type(group[key]) ~= "boolean" then
    fail(("%s: %s must be a boolean, got %s"):format(name, key, kind(group[key])))
  end
end

-- }======================================================================

-- {======================================================================
-- Classes and construction
-- =======================================================================

--- A new optimizer class.  spec: options (list of option names),
-- defaults (table; an option without a default is required), check
-- (function(name, group) raising on bad values), and the methods
-- _update(self, p, g, state, group).
function Optimizer.class(name, spec)
  local C = spec
  C.__name, C.__index = name, C
  C.__tostring = Optimizer.__tostring
  local known = {}
  for _, k in ipairs(C.options) do known[k] = true end
  C._known = known
  return setmetatable(C, {
    __index = Optimizer,
    __call = function(cls, params, opts) return Optimizer.new(cls, params, opts) end,
    __tostring = function() return "ember.optim." .. name end,
  })
end

--- Is t a table of options (string keys, no array part) rather than a
-- list of parameters or groups?
local function is_options(t)
  return type(t) == "table" and not ember.is_tensor(t) and t[1] == nil and
         next(t) ~= nil and t.params == nil
end

--- A copy of a group's option values (betas is a table: copied too).
local function copy_value(v)
  if type(v) == "table" and not ember.is_tensor(v) then
    local c = {}
    for k, x in pairs(v) do c[k] = x end
    return c
  end
  return v
end

--- Construct an instance of class C: optim.X(params [, opts]) or
-- optim.X(opts) (parameters bound later by set_params / add_param_group).
function Optimizer.new(C, params, opts)
  local name = C.__name
  if opts == nil and is_options(params) then params, opts = nil, params end
  check.options(name, opts, C._known, fail)
  local defaults = {}
  for k, v in pairs(C.defaults) do defaults[k] = copy_value(v) end
  for k, v in pairs(opts or {}) do defaults[k] = copy_value(v) end
  -- check what is set now; a required option (SGD's lr) may still come
  -- from each parameter group
  local probe = {}
  for k, v in pairs(defaults) do probe[k] = v end
  for _, k in ipairs(C.options) do
    -- only numeric options can lack a default (SGD's lr): 0 stands in
    if probe[k] == nil then probe[k] = 0 end
  end
  C.check(name, probe)
  local self = setmetatable({defaults = defaults, param_groups = {}, state = {}}, C)
  if params ~= nil then self:_bind(params) end
  return self
end

--- The groups a `params` argument describes: a list of tensors (one
-- group) or a list of group tables.
local function groups_of(name, params)
  if type(params) ~= "table" or ember.is_tensor(params) then
    fail(("%s: params must be a list of tensors or of parameter groups, got %s")
         :format(name, kind(params)))
  end
  if params.params ~= nil and params[1] == nil then
    fail(("%s: pass parameter groups as a list: {{params = ...}, ...}"):format(name))
  end
  if params[1] == nil then fail(("%s: empty parameter list"):format(name)) end
  if ember.is_tensor(params[1]) then return {{params = params}} end
  for i, g in ipairs(params) do
    if type(g) ~= "table" or ember.is_tensor(g) or g.params == nil then
      fail(("%s: parameter group %d must be a table with a params field, got %s")
           :format(name, i, kind(g)))
    end
  end
  return params
end

function Optimizer:_bind(params)
  for _, g in ipairs(groups_of(self.__name, params)) do self:add_param_group(g) end
end

--- Replace the parameters (a model's compile() binds them this way): all
-- groups and all state are dropped first.
function Optimizer:set_params(params)
  self.param_groups, self.state = {}, {}
  self:_bind(params)
end

-- }======================================================================

-- {======================================================================
-- Parameter groups
-- =======================================================================

--- Check the params of a new group: tensors, floating point, leaves, and
-- each in no group yet.
local function check_params(self, list, gi)
  local name = self.__name
  if ember.is_tensor(list) then list = {list} end
  if type(list) ~= "table" then
    fail(("%s: params of group %d must be a list of tensors, got %s")
         :format(name, gi, kind(list)))
  end
  if list[1] == nil then fail(("%s: empty parameter list"):format(name)) end
  local seen = {}
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do seen[p] = true end
  end
  local out = {}
  for i, p in ipairs(list) do
    local where = ("parameter %d of group %d"):format(i, gi)
    if not ember.is_tensor(p) then
      fail(("%s: %s is a %s, not a tensor"):format(name, where, kind(p)))
    end
    if not p:is_floating_point() then
      fail(("%s: %s has dtype %s; only floating tensors can be optimized")
           :format(name, where, p.dtype))
    end
    if p.is_leaf == false then
      fail(("%s: %s is not a leaf tensor (the result of an op); optimize leaves only")
           :format(name, where))
    end
    if seen[p] then
      fail(("%s: %s appears more than once (a parameter may be in one group only, once)")
           :format(name, where))
    end
    seen[p] = true
    out[i] = p
  end
  return out
end

--- Add a group {params = {...}, option = value, ...}; options it does not
-- set come from the optimizer's defaults.
function Optimizer:add_param_group(group)
  local name = self.__name
  if type(group) ~= "table" or ember.is_tensor(group) then
    fail(("%s: add_param_group expects a table {params = ...}, got %s")
         :format(name, kind(group)))
  end
  local gi = #self.param_groups + 1
  local g = {params = check_params(self, group.params, gi)}
  for k, v in pairs(group) do
    if k ~= "params" then g[k] = copy_value(v) end
  end
  for _, k in ipairs(self.options) do
    if g[k] == nil then g[k] = copy_value(self.defaults[k]) end
    if g[k] == nil then
      fail(("%s: %s is required (in the options or in every parameter group)")
           :format(name, k))
    end
  end
  self.check(name, g)
  self.param_groups[gi] = g
end

-- }======================================================================

-- {======================================================================
-- Stepping
-- =======================================================================

--- One optimization step over every parameter that has a gradient.  A
-- closure, if given, re-evaluates the loss (with grad mode on) and step
-- returns what it returns.
function Optimizer:step(closure)
  local loss
  if closure ~= nil then
    if type(closure) ~= "function" then
      fail(("%s:step: the closure must be a function, got %s"):format(self.__name, kind(closure)))
    end
    loss = ember.enable_grad(closure)
  end
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      local g = p.grad
      if g ~= nil then
        local st = self.state[p]
        if st == nil then st = {}; self.state[p] = st end
        self:_update(p, g, st, group)
      end
    end
  end
  return loss
end

--- Clear the gradients: p.grad = nil (the default), or zero them in place
-- when set_to_none is false.
function Optimizer:zero_grad(set_to_none)
  if set_to_none == nil then set_to_none = true end
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      local g = p.grad
      if g ~= nil then
        if set_to_none then p.grad = nil else g:zero_() end
      end
    end
  end
end

-- }======================================================================

-- {======================================================================
-- State dicts
-- =======================================================================

--- PyTorch's layout, with positions counted from 1 across all groups:
-- {state = {[i] = {step = n, exp_avg = tensor, ...}}, param_groups =
-- {{lr = ..., params = {1, 2}}, ...}}.  The tensors are the live state
-- (not copies), as in PyTorch; load_state_dict copies them.
function Optimizer:state_dict()
  local index, n, groups, state = {}, 0, {}, {}
  for gi, group in ipairs(self.param_groups) do
    local g, ids = {}, {}
    for k, v in pairs(group) do
      if k ~= "params" then g[k] = copy_value(v) end
    end
    for _, p in ipairs(group.params) do
      n = n + 1
      index[p], ids[#ids + 1] = n, n
    end
    g.params, groups[gi] = ids, g
  end
  for p, st in pairs(self.state) do
    local s = {}
    for k, v in pairs(st) do s[k] = v end
    state[index[p]] = s
  end
  return {state = state, param_groups = groups}
end

local function shape_str(t) return "[" .. table.concat(t:shape(), ",") .. "]" end

local function same_shape(a, b)
  local sa, sb = a:shape(), b:shape()
  if #sa ~= #sb then return false end
  for i = 1, #sa do
    if sa[i] ~= sb[i] then return false end
  end
  return true
end

--- Check a saved state dict against this optimizer; returns the
-- parameter of each saved position.
local function check_state_dict(self, sd)
  local fn = self.__name .. ":load_state_dict"
  if type(sd) ~= "table" or type(sd.state) ~= "table" or type(sd.param_groups) ~= "table" then
    fail(fn .. ": expected a table with state and param_groups fields")
  end
  if #sd.param_groups ~= #self.param_groups then
    fail(("%s: the state dict has %d parameter groups but the optimizer has %d")
         :format(fn, #sd.param_groups, #self.param_groups))
  end
  local param_of = {}
  for gi, saved in ipairs(sd.param_groups) do
    local ps = self.param_groups[gi].params
    if type(saved) ~= "table" or type(saved.params) ~= "table" or #saved.params ~= #ps then
      fail(("%s: group %d of the state dict does not have the group's %d parameters")
           :format(fn, gi, #ps))
    end
    for i, id in ipairs(saved.params) do param_of[id] = ps[i] end
  end
  for id, st in pairs(sd.state) do
    local p = param_of[id]
    if p == nil or type(st) ~= "table" then
      fail(("%s: state entry %s names no parameter of the state dict's groups")
           :format(fn, tostring(id)))
    end
    local keys = {}  -- sorted, so the first error is always the same
    for k in pairs(st) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = st[k]
      if ember.is_tensor(v) and not same_shape(v, p) then
        fail(("%s: state '%s' of parameter %s has shape %s but the parameter has %s")
             :format(fn, k, tostring(id), shape_str(v), shape_str(p)))
      end
    end
  end
  return param_of
end

--- Load a state dict made by state_dict() of an optimizer of the same
-- kind over parameters of the same shapes: group options are replaced and
-- state tensors copied (converted to each parameter's dtype).
function Optimizer:load_state_dict(sd)
  local param_of = check_state_dict(self, sd)
  local groups = {}
  for gi, saved in ipairs(sd.param_groups) do
    local g = {params = self.param_groups[gi].params}
    for k, v in pairs(saved) do
      if k ~= "params" then g[k] = copy_value(v) end
    end
    self.check(self.__name .. ":load_state_dict", g)
    groups[gi] = g
  end
  local state = {}
  for id, st in pairs(sd.state) do
    local p, s = param_of[id], {}
    for k, v in pairs(st) do
      if ember.is_tensor(v) then
        s[k] = ember.zeros_like(p)
        s[k]:copy_(v)
      else
        s[k] = copy_value(v)
      end
    end
    state[p] = s
  end
  self.param_groups, self.state = groups, state
end

--- Follow parameters that moved (Module:to(device) gives map old -> new):
-- the groups list the new tensors, and state tensors move with them.
function Optimizer:_remap(map)
  for _, g in ipairs(self.param_groups) do
    for i, p in ipairs(g.params) do g.params[i] = map[p] or p end
  end
  local state = {}
  for p, st in pairs(self.state) do
    local np = map[p] or p
    local s = {}
    for k, v in pairs(st) do
      s[k] = ember.is_tensor(v) and v.device ~= np.device and v:to(np.device) or v
    end
    state[np] = s
  end
  self.state = state
end

-- }======================================================================

--- "Adam(lr=0.001, ...; 1 group, 2 parameters)"
function Optimizer:__tostring()
  local parts = {}
  for _, k in ipairs(self.options) do
    local v = self.defaults[k]
    if type(v) == "table" then v = "{" .. table.concat(v, ", ") .. "}" end
    parts[#parts + 1] = k .. "=" .. tostring(v)
  end
  local n = 0
  for _, g in ipairs(self.param_groups) do n = n + #g.params end
  return ("%s(%s; %d group%s, %d parameter%s)"):format(self.__name,
    table.concat(parts, ", "), #self.param_groups, #self.param_groups == 1 and "" or "s",
    n, n == 1 and "" or "s")
end

return Optimizer
