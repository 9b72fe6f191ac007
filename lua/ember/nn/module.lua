--- ember.nn.Module: the base class of layers, containers and losses.
--
-- A module keeps what PyTorch's nn.Module keeps: parameters, buffers and
-- child modules, each in an ordered store, so that named_parameters() and
-- state_dict() list names in registration order (own parameters first,
-- then children recursively, names joined with ".").  Assigning a field
-- registers it, as PyTorch's __setattr__ does: a module becomes a child, a
-- tensor that requires grad becomes a parameter, and assigning to a name
-- already registered replaces that entry.  Plain values live in a fields
-- table, never in the instance itself, so every assignment goes through
-- __newindex (a raw field would hide a later module assigned to its name).
local ember = require "ember"
local common = require "ember.nn.common"
local check = require "ember.check"

local Module = {__name = "Module"}

-- {======================================================================
-- Classes
-- =======================================================================

-- Every instance is a table holding only these four stores.
local STORES = {_parameters = true, _buffers = true, _modules = true, _fields = true}

local function new_store() return {names = {}, map = {}} end

local function store_set(store, name, v)
  if store.map[name] == nil and v ~= nil then store.names[#store.names + 1] = name end
  if v == nil then
    for i, n in ipairs(store.names) do
      if n == name then table.remove(store.names, i) break end
    end
  end
  store.map[name] = v
end

--- True when v is a module instance (any class derived from Module).
local function is_module(v)
  local mt = type(v) == "table" and getmetatable(v)
  return mt and rawget(mt, "__ember_module") == true or false
end
Module.is_module = is_module

local function class_name(self) return getmetatable(self).__class.__name end

--- m:is_a(C): true when m is an instance of class C or of a class derived
-- from it (PyTorch's isinstance(m, C)): nn.Linear(2, 2):is_a(nn.Module).
function Module:is_a(C)
  local c = is_module(self) and getmetatable(self).__class
  while c do
    if c == C then return true end
    c = rawget(c, "__parent")
  end
  return false
end

local newindex

--- The names an instance offers (its metatable's __dir, which the REPL's
-- completion calls, as Python's dir() calls __dir__): its parameters,
-- buffers, children and fields, then the methods of its class and of the
-- classes it derives from.  The stores' values stay behind __index, where
-- a walk of raw keys cannot see them.
local function dir(self)
  local names, seen = {}, {}
  local function add(k)
    if type(k) == "string" and not seen[k] then
      seen[k] = true
      names[#names + 1] = k
    end
  end
  for _, store in ipairs({"_parameters", "_buffers", "_modules"}) do
    for _, name in ipairs(rawget(self, store).names) do add(name) end
  end
  for k in pairs(rawget(self, "_fields")) do add(k) end
  local c = getmetatable(self).__class
  while c do
    for k, v in pairs(c) do
      if type(v) == "function" then add(k) end
    end
    c = rawget(c, "__parent")
  end
  return names
end

--- The metatable of the instances of class C.  Lookups go to the stores
-- first (parameters, buffers, children, fields), then to the class chain.
local function instance_mt(C)
  local mt = {__ember_module = true, __class = C, __name = C.__name, __dir = dir}
  mt.__index = function(self, k)
    local v = rawget(self, "_parameters").map[k]
    if v ~= nil then return v end
    v = rawget(self, "_buffers").map[k]
    if v ~= nil then return v end
    v = rawget(self, "_modules").map[k]
    if v ~= nil then return v end
    v = rawget(self, "_fields")[k]
    if v ~= nil then return v end
    v = C[k]
    if v == nil and math.type(k) == "integer" then return C._index_number(self, k) end
    return v
  end
  mt.__newindex = newindex
  mt.__call = function(self, ...) return self:forward(...) end
  mt.__tostring = function(self) return self:_repr() end
  mt.__len = function(self) return self:_len() end
  return mt
end

-- Every class by name, so that nn.load can rebuild a saved architecture
-- (ember.nn.serialize).  A later class of the same name replaces an
-- earlier one: the latest definition wins.
local classes = {}

--- The class registered under name (nil if none).
function Module._class_named(name) return classes[name] end

--- A field defined on a class.  A forward defined outside the library (a
-- user's model) is wrapped to mark its result as a model's output, for
-- ember.warnings.  That is one frame more between the forward and its
-- caller, and it is the library's: an error(msg, 2) in the forward, or
-- one from a layer it tail-calls (`return self.fc(x)`), would name the
-- wrapper's line.  So the forward runs under a pcall (about 0.1 us a
-- call) and what fails is raised again by blame.reraise, which gives a
-- message positioned in the library the user's calling line and keeps
-- one positioned in the user's code.  The traceback of a failed forward
-- then starts at its caller; the message still names the failing line.
local function define(C, k, v)
  if k == "forward" and type(v) == "function" then
    local blame = require "ember.blame"
    if not blame.library_source(debug.getinfo(v, "S").source) then
      local f, mark, reraise = v, require("ember.warnings").mark, blame.reraise
      local function marked(ok, ...)
        if not ok then reraise((...)) end
        return mark(...)
      end
      v = function(self, ...) return marked(pcall(f, self, ...)) end
    end
  end
  rawset(C, k, v)
end

--- Module:extend(name): a new class deriving from this one.  Define
-- `init(self, ...)` (the constructor) and `forward(self, ...)` on it;
-- calling the class constructs an instance.
function Module.extend(Parent, name)
  if type(name) ~= "string" or name == "" then
    error("extend: expected a class name (a non-empty string), got " .. type(name), 2)
  end
  local C = {__name = name, __parent = Parent}
  C.__mt = instance_mt(C)
  classes[name] = C
  return setmetatable(C, {
    __index = Parent,
    __newindex = define,
    __call = function(cls, ...) return cls:new(...) end,
    __tostring = function() return "class " .. name end,
  })
end

-- The constructor arguments of every instance (table.pack'ed), for
-- get_config.  Weak keys: an entry goes when its module does.  They live
-- here rather than in the instance, which holds only the four stores.
local args_of = setmetatable({}, {__mode = "k"})

--- A copy of a constructor argument: plain tables (an options table, a
-- list of sizes) are copied all the way down, so that the caller changing
-- them later does not change what is saved; tensors, modules and other
-- values are kept as they are.  seen keeps shared and cyclic tables so.
local function copy_arg(v, seen)
  if type(v) ~= "table" or getmetatable(v) ~= nil then return v end
  if seen[v] then return seen[v] end
  local c = {}
  seen[v] = c
  for k, x in pairs(v) do c[k] = copy_arg(x, seen) end
  return c
end

--- The arguments the constructor of m was called with: a table.pack'ed
-- list (field n counts trailing nils), or nil if m was not made by new.
function Module._constructor_args(m) return args_of[m] end

--- Construct an instance of class C: empty stores, training mode, then
-- C.init(self, ...).  The arguments are recorded first (see args_of).
function Module.new(C, ...)
  local self = setmetatable({_parameters = new_store(), _buffers = new_store(),
                             _modules = new_store(), _fields = {training = true}}, C.__mt)
  local args, seen = table.pack(...), {}
  for i = 1, args.n do args[i] = copy_arg(args[i], seen) end
  args_of[self] = args
  self:init(...)
  return self
end

function Module:init() end

function Module:forward()
  error(("forward: %s does not define forward"):format(class_name(self)), 2)
end

function Module:_index_number() return nil end

function Module:_len()
  error(("attempt to get length of a %s module"):format(class_name(self)), 2)
end

--- Register an assignment (see the header comment).
newindex = function(self, k, v)
  local params, buffers, mods = rawget(self, "_parameters"), rawget(self, "_buffers"),
                                rawget(self, "_modules")
  local fields = rawget(self, "_fields")
  if STORES[k] then error("cannot assign to the internal field '" .. k .. "'", 2) end
  -- m[i] = v on a container numbered by position (Sequential, ModuleList)
  if math.type(k) == "integer" and getmetatable(self).__class._set_number then
    return getmetatable(self).__class._set_number(self, k, v)
  end
  if is_module(v) then
    store_set(params, k, nil); store_set(buffers, k, nil); fields[k] = nil
    store_set(mods, k, v)
  elseif params.map[k] ~= nil or buffers.map[k] ~= nil then
    if v ~= nil and not ember.is_tensor(v) then
      error(("cannot assign a %s to '%s' of %s (a tensor or nil expected)")
            :format(type(v), tostring(k), class_name(self)), 2)
    end
    store_set(params.map[k] ~= nil and params or buffers, k, v)
  elseif mods.map[k] ~= nil then
    if v ~= nil then
      error(("cannot assign a %s as child module '%s' of %s (a module or nil expected)")
            :format(type(v), tostring(k), class_name(self)), 2)
    end
    store_set(mods, k, nil)
  elseif type(k) == "string" and ember.is_tensor(v) and common.requires_grad(v) then
    fields[k] = nil
    store_set(params, k, v)
  else
    fields[k] = v
  end
end

-- }======================================================================

-- {======================================================================
-- Registration
-- =======================================================================

local function check_name(self, fname, name)
  if type(name) ~= "string" or name == "" or name:find(".", 1, true) then
    error(("%s: name must be a non-empty string without '.', got %s")
          :format(fname, type(name) == "string" and ("'" .. name .. "'") or type(name)), 3)
  end
  if STORES[name] then error(("%s: '%s' is a reserved name"):format(fname, name), 3) end
  local owner = rawget(self, "_parameters").map[name] and "parameter"
             or rawget(self, "_buffers").map[name] and "buffer"
             or rawget(self, "_modules").map[name] and "module"
  if owner and owner ~= fname:match("^register_(%a+)") and
     not (owner == "module" and fname == "add_module") then
    error(("%s: '%s' is already a %s"):format(fname, name, owner), 3)
  end
end

--- Register t as a parameter called name (t requires grad from now on);
-- nil removes it.  Returns t.
function Module:register_parameter(name, t)
  check_name(self, "register_parameter", name)
  if t ~= nil then
    common.check_tensor("register_parameter", t, "the parameter", 2)
    if not common.requires_grad(t) then common.param(t) end
  end
  rawget(self, "_fields")[name] = nil
  store_set(rawget(self, "_parameters"), name, t)
  return t
end

--- Register t as a buffer (state that is saved but not trained, such as
-- BatchNorm's running mean); nil removes it.  Returns t.
function Module:register_buffer(name, t)
  check_name(self, "register_buffer", name)
  if t ~= nil then common.check_tensor("register_buffer", t, "the buffer", 2) end
  rawget(self, "_fields")[name] = nil
  store_set(rawget(self, "_buffers"), name, t)
  return t
end

--- Add m as a child module called name.  Returns m.
function Module:add_module(name, m)
  check_name(self, "add_module", name)
  if m ~= nil and not is_module(m) then
    error(("add_module: expected a module, got %s"):format(type(m)), 2)
  end
  rawget(self, "_fields")[name] = nil
  store_set(rawget(self, "_modules"), name, m)
  return m
end

-- }======================================================================

-- {======================================================================
-- Traversal
-- =======================================================================

local function iter(list)
  local i = 0
  return function()
    i = i + 1
    local e = list[i]
    if e then return e[1], e[2] end
  end
end

--- All (name, module) pairs, self first (name ""), depth first.
local function walk(self, prefix, out)
  out[#out + 1] = {prefix, self}
  local mods = rawget(self, "_modules")
  for _, n in ipairs(mods.names) do
    walk(mods.map[n], prefix == "" and n or prefix .. "." .. n, out)
  end
  return out
end

--- (name, tensor) pairs of one store kind over the module tree, each
-- tensor once (a tensor shared by two layers is listed under its first name).
local function named_tensors(self, store, recurse)
  local out, seen = {}, {}
  local mods = recurse == false and {{"", self}} or walk(self, "", {})
  for _, e in ipairs(mods) do
    local s = rawget(e[2], store)
    for _, n in ipairs(s.names) do
      local t = s.map[n]
      if not seen[t] then
        seen[t] = true
        out[#out + 1] = {e[1] == "" and n or e[1] .. "." .. n, t}
      end
    end
  end
  return out
end

local function values(list)
  local out = {}
  for i, e in ipairs(list) do out[i] = e[2] end
  return out
end

--- Iterator over (name, parameter), in registration order.
function Module:named_parameters(recurse)
  return iter(named_tensors(self, "_parameters", recurse))
end
--- The parameters as a list, in the order of named_parameters.
function Module:parameters(recurse)
  return values(named_tensors(self, "_parameters", recurse))
end
function Module:named_buffers(recurse)
  return iter(named_tensors(self, "_buffers", recurse))
end
function Module:buffers(recurse)
  return values(named_tensors(self, "_buffers", recurse))
end

local function child_list(self)
  local mods, out = rawget(self, "_modules"), {}
  for _, n in ipairs(mods.names) do out[#out + 1] = {n, mods.map[n]} end
  return out
end
function Module:named_children() return iter(child_list(self)) end
function Module:children() return values(child_list(self)) end
--- Iterator over (name, module) of the whole tree, self first with name "".
function Module:named_modules() return iter(walk(self, "", {})) end
function Module:modules() return values(walk(self, "", {})) end

--- Call fn(m) on every child (recursively), then on self; returns self.
function Module:apply(fn)
  if type(fn) ~= "function" then
    error("apply: expected a function, got " .. type(fn), 2)
  end
  for _, m in ipairs(self:children()) do m:apply(fn) end
  fn(self)
  return self
end

--- Set training mode (mode defaults to true) on the whole tree.
function Module:train(mode)
  if mode == nil then mode = true end
  if type(mode) ~= "boolean" then
    error("train: expected a boolean, got " .. type(mode), 2)
  end
  for _, m in ipairs(self:modules()) do rawget(m, "_fields").training = mode end
  return self
end
function Module:eval() return self:train(false) end

--- Drop the gradients of every parameter (p.grad = nil, as PyTorch's
-- set_to_none default).
function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p.grad = nil end
  return self
end

-- }======================================================================

-- {======================================================================
-- State
-- =======================================================================

--- Ordered (name, tensor) list of parameters then buffers of each module,
-- as PyTorch's state_dict orders them.
local function state_list(self)
  local out = {}
  for _, e in ipairs(walk(self, "", {})) do
    for _, store in ipairs{"_parameters", "_buffers"} do
      local s = rawget(e[2], store)
      for _, n in ipairs(s.names) do
        out[#out + 1] = {e[1] == "" and n or e[1] .. "." .. n, s.map[n]}
      end
    end
  end
  return out
end

--- Tied tensors: {alias = name} for every parameter or buffer reached
-- under a second name (m[2].weight = m[1].weight gives {["2.weight"] =
-- "1.weight"}); name is the first in state_dict order.  For saving.
function Module:_ties()
  local first, ties = {}, {}
  for _, e in ipairs(state_list(self)) do
    local t = e[2]
    if first[t] then ties[e[1]] = first[t] else first[t] = e[1] end
  end
  return ties
end

--- Tie again what _ties reported: the tensor under each alias becomes the
-- one under its name (after loading, which fills both with equal values).
-- Unknown names are errors; nothing changes then.
function Module:_retie(ties)
  local where = {}
  for _, e in ipairs(walk(self, "", {})) do
    for _, store in ipairs{"_parameters", "_buffers"} do
      local st = rawget(e[2], store)
      for _, n in ipairs(st.names) do
        where[e[1] == "" and n or e[1] .. "." .. n] = {st, n}
      end
    end
  end
  for alias, name in pairs(ties) do
    if not where[alias] or not where[name] then
      error(("tied tensor '%s' -> '%s' is not in the model"):format(tostring(alias), tostring(name)), 2)
    end
  end
  for alias, name in pairs(ties) do
    local a, n = where[alias], where[name]
    a[1].map[a[2]] = n[1].map[n[2]]
  end
  return self
end

--- A table name -> tensor of every parameter and buffer.  The tensors are
-- detached but share storage with the module's (as in PyTorch): clone
-- them to keep a snapshot.
function Module:state_dict()
  local sd = {}
  for _, e in ipairs(state_list(self)) do sd[e[1]] = common.detach(e[2]) end
  return sd
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = tostring(k) end
  table.sort(ks)
  return ks
end

--- The entries of sd under the names the module will see: map (a table
-- old -> new, where false drops and an absent name stays; or a function
-- of the name giving the new name, or nil/false to drop) renames each.
-- Returns new -> tensor and new -> old (for messages, which name both).
-- Keys are visited in sorted order so a clash is reported the same way
-- every time.
local function renamed(sd, map)
  local mt = type(map)
  if map ~= nil and mt ~= "table" and mt ~= "function" then
    error("load_state_dict: map must be a table or a function, got " .. mt, 3)
  end
  local keys = {}
  for k in pairs(sd) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local out, from = {}, {}
  for _, k in ipairs(keys) do
    local new = k
    if mt == "table" then
      if map[k] ~= nil then new = map[k] end
    elseif mt == "function" then
      new = map(k)
    end
    if new then
      if type(new) ~= "string" then
        error(("load_state_dict: map renames '%s' to a %s, expected a string (or nil to drop it)")
              :format(tostring(k), type(new)), 3)
      end
      if from[new] ~= nil then
        error(("load_state_dict: map renames both '%s' and '%s' to '%s'")
              :format(tostring(from[new]), tostring(k), new), 3)
      end
      out[new], from[new] = sd[k], k
    end
  end
  return out, from
end

--- Copy the values of sd into the module's parameters and buffers, in
-- place.  Everything is checked before anything is written, so a failure
-- leaves the module unchanged.  opts: strict (default true) makes missing
-- and unexpected keys errors; map renames sd's keys first (see renamed),
-- and strict checks the new names.  A boolean second argument is strict
-- (the spelling before options existed).  Returns the lists of missing and
-- unexpected keys (after renaming).
function Module:load_state_dict(sd, opts)
  if type(sd) ~= "table" or ember.is_tensor(sd) then
    error("load_state_dict: expected a table of tensors, got " .. check.type_name(sd), 2)
  end
  if type(opts) == "boolean" then opts = {strict = opts} end
  opts = check.options("load_state_dict", opts, {strict = true, map = true}, 2)
  local strict = opts.strict
  check.boolean("load_state_dict", "strict", strict, 2)
  if strict == nil then strict = true end
  local from
  sd, from = renamed(sd, opts.map)
  -- after a key's new name in messages: its name in sd, if map changed it
  local function was(k)
    return from[k] ~= k and (" (was '%s')"):format(tostring(from[k])) or ""
  end
  local own, known, missing, unexpected = state_list(self), {}, {}, {}
  for _, e in ipairs(own) do
    known[e[1]] = true
    if sd[e[1]] == nil then missing[#missing + 1] = e[1] end
  end
  for _, k in ipairs(sorted_keys(sd)) do
    if not known[k] then unexpected[#unexpected + 1] = k end
  end
  if strict and (#missing > 0 or #unexpected > 0) then
    local parts, shown = {}, {}
    if #missing > 0 then parts[#parts + 1] = "missing keys: " .. table.concat(missing, ", ") end
    if #unexpected > 0 then
      for i, k in ipairs(unexpected) do shown[i] = k .. was(k) end
      parts[#parts + 1] = "unexpected keys: " .. table.concat(shown, ", ")
    end
    error(("load_state_dict: error loading into %s: %s"):format(class_name(self),
          table.concat(parts, "; ")), 2)
  end
  for _, e in ipairs(own) do
    local v = sd[e[1]]
    if v ~= nil then
      if not ember.is_tensor(v) then
        error(("load_state_dict: '%s'%s is a %s, expected a tensor"):format(e[1], was(e[1]), type(v)), 2)
      end
      if common.shape_str(v) ~= common.shape_str(e[2]) then
        error(("load_state_dict: size mismatch for %s%s: copying a tensor of shape %s, " ..
               "the model has %s"):format(e[1], was(e[1]), common.shape_str(v), common.shape_str(e[2])), 2)
      end
    end
  end
  common.no_grad(function()
    for _, e in ipairs(own) do
      if sd[e[1]] ~= nil then e[2]:copy_(sd[e[1]]) end
    end
  end)
  return missing, unexpected
end

local FLOAT = {float32 = "float32", float = "float32", float64 = "float64", double = "float64",
               bfloat16 = "bfloat16", bf16 = "bfloat16", float16 = "float16", half = "float16"}
local DEVICE = {cpu = "cpu", cuda = "cuda"}
local blame_user = require("ember.blame").failer("ember/nn/module")

--- Convert every floating parameter and buffer to a dtype, or move every
-- parameter and buffer to a device ("cpu", "cuda", "cuda:N"), in place of
-- the module (the tensors are new ones; requires_grad is kept, grads
-- dropped).  A tensor shared by several places (tied weights) is converted
-- once and stays shared.  A compiled model's optimizer follows its
-- parameters to a new device.
function Module:to(target)
  local d, dev = FLOAT[target], DEVICE[target]
  local devname = dev
  if type(target) == "string" and target:match("^cuda:%d+$") then dev, devname = "cuda", target end
  if not d and not dev then
    error(("to: expected a floating dtype (float32, float64, bfloat16, float16) or a device (cpu or cuda), got %s")
          :format(type(target) == "string" and "'" .. target .. "'" or type(target)), 2)
  end
  if dev == "cuda" and not ember.cuda.is_available() then
    blame_user("cuda: CUDA is not available (" .. tostring(ember.cuda.unavailable_reason()) .. ")")
  end
  local moved = {}
  common.no_grad(function()
    for _, m in ipairs(self:modules()) do
      for _, store in ipairs{"_parameters", "_buffers"} do
        local s = rawget(m, store)
        for _, n in ipairs(s.names) do
          local t = s.map[n]
          local c = moved[t]                 -- converted already: shared
          if c == nil then
            if dev then
              if t.device ~= dev or devname ~= dev then c = common.detach(t):to(devname) end
            elseif t.dtype ~= d and t:is_floating_point() then
              c = common.detach(t):to(d)
            end
            if c and rawequal(c, t) then c = nil end
            if c then
              if common.requires_grad(t) then common.param(c) end
              moved[t] = c
            end
          end
          if c then s.map[n] = c end
        end
      end
    end
  end)
  local opt = rawget(self, "_fields").optimizer
  if dev and opt and opt._remap then opt:_remap(moved) end
  return self
end
--- Move the module's parameters and buffers to the GPU / the CPU.
function Module:cuda() return self:to("cuda") end
function Module:cpu() return self:to("cpu") end
function Module:float() return self:to("float32") end
function Module:double() return self:to("float64") end
function Module:bfloat16() return self:to("bfloat16") end
function Module:half() return self:to("float16") end

-- Saving (ember.nn.serialize, required when first used: it requires this
-- file).

--- {class = name, args = {...}}: what nn.from_config rebuilds m from.
function Module:get_config() return require("ember.nn.serialize").get_config(self) end

--- Write the model (weights, architecture, optimizer state) to a
-- safetensors file; see docs/nn.md.
function Module:save(path, opts) return require("ember.nn.serialize").save(self, path, opts) end

-- }======================================================================

-- {======================================================================
-- Printing
-- =======================================================================

--- The text inside the parentheses of a leaf's tostring; layers override.
function Module:extra_repr() return "" end

function Module:_repr()
  local kids = child_list(self)
  local head = class_name(self) .. "(" .. self:extra_repr()
  if #kids == 0 then return head .. ")" end
  local lines = {head}
  for _, e in ipairs(kids) do
    local s = tostring(e[2]):gsub("\n", "\n  ")
    lines[#lines + 1] = ("  (%s): %s"):format(e[1], s)
  end
  return table.concat(lines, "\n") .. "\n)"
end

-- }======================================================================

Module.__mt = instance_mt(Module)
classes.Module = Module
setmetatable(Module, {
  __call = function(cls, ...) return cls:new(...) end,
  __tostring = function() return "class Module" end,
})

return Module
