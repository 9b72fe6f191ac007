--- Containers: Sequential (calls its layers in order), ModuleList (holds
-- modules by position, never called) and ModuleDict (holds modules by
-- name).  Sequential and ModuleList number their children "1", "2", ...
-- (1-based), so c[i] is the i-th module and #c their number; they share
-- the helpers of the first section.
local Module = require "ember.nn.module"
local blame = require "ember.blame"
local mark = require("ember.warnings").mark

-- {======================================================================
-- Children numbered 1, 2, ...
-- =======================================================================

--- Check that layers is a list of modules (level: of the caller's caller).
local function check_list(fname, layers, what, level)
  if type(layers) ~= "table" or Module.is_module(layers) then
    error(("%s: expected a list of modules, got %s"):format(fname,
          Module.is_module(layers) and "a module" or type(layers)), level + 1)
  end
  for k in pairs(layers) do
    if math.type(k) ~= "integer" or k < 1 or k > #layers then
      error(("%s: expected a list of modules (named entries are not supported)"):format(fname),
            level + 1)
    end
  end
  for i = 1, #layers do
    if not Module.is_module(layers[i]) then
      error(("%s: %s %d is a %s, expected a module"):format(fname, what, i, type(layers[i])),
            level + 1)
    end
  end
  return layers
end

--- Make list the children, named "1".."n" (replacing the old ones).
local function renumber(self, list)
  local store = rawget(self, "_modules")
  store.names, store.map = {}, {}
  for i, m in ipairs(list) do
    store.names[i] = tostring(i)
    store.map[tostring(i)] = m
  end
end

--- A position in 1..n (negative i counts from the end), or nil.
local function position(self, i)
  local n = #self
  if i < 0 then i = n + 1 + i end
  if i >= 1 and i <= n then return i end
  return nil
end

--- The config lists the children it has now (not those it was built
-- with), so a container grown after construction is saved as it is.
local function current_children(self, what)
  local serialize = require "ember.nn.serialize"
  local list = {n = #self}
  for i, name in ipairs(rawget(self, "_modules").names) do
    if name ~= tostring(i) then
      serialize.fail(("%s: %s %d of %s is named '%s'; only %ss named by their " ..
                      "position (1, 2, ...) can be saved"):format(serialize.fname("get_config"),
                                                                  what, i, self.__name, name, what))
    end
    list[i] = self[i]
  end
  return list
end

local function len(self) return #rawget(self, "_modules").names end

--- c[i]: the i-th child; negative i counts from the end.
local function index_number(self, i)
  i = position(self, i)
  return i and rawget(self, "_modules").map[tostring(i)]
end

--- c[i] = m replaces the i-th child (i in 1..n, negative from the end);
-- c[n + 1] = m appends, as a list would.
local function set_number(self, i, m)
  local name = self.__name
  if not Module.is_module(m) then
    error(("%s: can only assign a module to [%d], got %s"):format(name, i, type(m)), 3)
  end
  local n, p = #self, position(self, i)
  if not p and i ~= n + 1 then
    error(("%s: index %d is out of range for %d modules"):format(name, i, n), 3)
  end
  local store = rawget(self, "_modules")
  if p and store.map[tostring(p)] ~= nil then
    store.map[tostring(p)] = m           -- in place: the name keeps its position
  else
    self:add_module(tostring(p or i), m)
  end
end

-- }======================================================================

-- {======================================================================
-- Sequential
-- =======================================================================

local Sequential = Module:extend("Sequential")

function Sequential:init(...)
  local layers = {...}
  if select("#", ...) == 1 and type(layers[1]) == "table" and not Module.is_module(layers[1]) then
    layers = layers[1]
  end
  check_list("Sequential", layers, "layer", 3)
  for i = 1, #layers do self:add_module(tostring(i), layers[i]) end
end

--- Append a layer; returns self (so adds chain).
function Sequential:add(m)
  if not Module.is_module(m) then
    error(("add: expected a module, got %s"):format(type(m)), 2)
  end
  self:add_module(tostring(#self + 1), m)
  return self
end

-- Layer pairs that run as one fused op: a Conv2d followed by a ReLU, both
-- of exactly those classes (a subclass may change forward) and neither
-- with a forward of its own set on the instance.  The result is the same
-- as calling the two in turn; the ReLU's output is never a separate
-- tensor.
local Conv2d_mt, ReLU_mt
local function fuses(a, b)
  if not Conv2d_mt then
    Conv2d_mt = require("ember.nn.conv").Conv2d.__mt
    ReLU_mt = require("ember.nn.activation").ReLU.__mt
  end
  return getmetatable(a) == Conv2d_mt and getmetatable(b) == ReLU_mt
     and rawget(a, "_fields").forward == nil and rawget(b, "_fields").forward == nil
end

-- The layer each Sequential is running (its position), for naming it when
-- it fails: one store per layer, cheaper than a pcall per layer.
local running = setmetatable({}, {__mode = "k"})

local function run(self, x, ...)
  local n, i = #self, 1
  while i <= n do
    local m = self[i]
    running[self] = i
    if i < n and fuses(m, self[i + 1]) and select("#", ...) == 0 then
      x = m:_forward_relu(x)
      i = i + 2
    else
      if i == 1 then x = m(x, ...) else x = m(x) end
      i = i + 1
    end
  end
  return x
end

--- How a failing layer is named: a leaf as it prints, a container (whose
-- print spans lines) by its class.
local function describe(m)
  local s = tostring(m)
  return s:find("\n", 1, true) and getmetatable(m).__name or s
end

-- The last message a Sequential raised, with its parts, so that an outer
-- Sequential catching it extends the path ("layer 2 (Sequential) > layer
-- 4 (...)") rather than naming the inner container again.
local last = {}

--- Raise what layer i failed with at the user's line, naming the layer.
local function layer_failed(self, i, e)
  if type(e) ~= "string" then error(e, 0) end
  local path = ("layer %d (%s)"):format(i, describe(self[i]))
  local pos, body
  if e == last.msg then
    pos, path, body = last.pos, path .. " > " .. last.path, last.body
  else
    local p, ours, rest = blame.split(e)
    -- the user's own code (a layer they wrote) keeps its position
    pos, body = (p and not ours) and p or blame.where(), rest
  end
  local msg = ("%s%s %s: %s"):format(pos, getmetatable(self).__name, path, body)
  last.msg, last.pos, last.path, last.body = msg, pos, path, body
  error(msg, 0)
end

function Sequential:forward(...)
  local ok, y = pcall(run, self, ...)
  if not ok then layer_failed(self, running[self], y) end
  return mark(y)
end

Sequential._len = len
Sequential._index_number = index_number
Sequential._set_number = set_number

--- Saved as Sequential(layer1, layer2, ...) with the layers it has now.
function Sequential:get_config()
  return require("ember.nn.serialize").config_from_args(self, current_children(self, "layer"))
end

-- }======================================================================

-- {======================================================================
-- ModuleList
-- =======================================================================

--- ModuleList([modules]): PyTorch's ModuleList.  Its modules are children
-- named "1", "2", ... (so parameters are "1.weight", ...); it has no
-- forward: iterate it (ipairs(list), list:children()) in the owner's.
local ModuleList = Module:extend("ModuleList")

function ModuleList:init(modules)
  if modules == nil then return end
  check_list("ModuleList", modules, "entry", 3)
  for i = 1, #modules do self:add_module(tostring(i), modules[i]) end
end

ModuleList._len = len
ModuleList._index_number = index_number
ModuleList._set_number = set_number

--- Append m; returns self.
function ModuleList:append(m)
  if not Module.is_module(m) then
    error(("append: expected a module, got %s"):format(type(m)), 2)
  end
  self:add_module(tostring(#self + 1), m)
  return self
end

--- Append every module of a list (or of another ModuleList); returns self.
function ModuleList:extend(modules)
  if Module.is_module(modules) then
    if not modules:is_a(ModuleList) and not modules:is_a(Sequential) then
      error("extend: expected a list of modules or a ModuleList, got a " .. modules.__name, 2)
    end
    modules = modules:children()
  end
  check_list("extend", modules, "entry", 2)
  for i = 1, #modules do self:add_module(tostring(#self + 1), modules[i]) end
  return self
end

--- Insert m before position index (1..n+1; negative counts from the end,
-- as PyTorch's insert does); the modules after it are renumbered.
-- Returns self.
function ModuleList:insert(index, m)
  local n = #self
  if math.type(index) ~= "integer" then
    error(("insert: index must be an integer, got %s"):format(type(index)), 2)
  end
  if not Module.is_module(m) then
    error(("insert: expected a module, got %s"):format(type(m)), 2)
  end
  local p = index < 0 and n + 1 + index or index
  if p < 1 or p > n + 1 then
    error(("insert: index %d is out of range for %d modules"):format(index, n), 2)
  end
  local list = self:children()
  table.insert(list, p, m)
  renumber(self, list)
  return self
end

--- Saved as ModuleList{m1, m2, ...} with the modules it has now.
function ModuleList:get_config()
  local list = current_children(self, "module")
  list.n = nil
  return require("ember.nn.serialize").config_from_args(self, {list, n = 1})
end

-- }======================================================================

-- {======================================================================
-- ModuleDict
-- =======================================================================

--- ModuleDict([entries]): PyTorch's ModuleDict, modules by name.  entries
-- is a list of {name, module} pairs (kept in that order) or a table
-- name -> module (sorted by name: a Lua table has no order).  d.name or
-- d["name"] is a module, d.name = m adds or replaces one (in place),
-- #d counts them.
local ModuleDict = Module:extend("ModuleDict")

--- The entries as a list of {name, module} pairs, checked; a plain table
-- is sorted by key.
local function dict_entries(fname, entries, level)
  local list = {}
  if Module.is_module(entries) and entries:is_a(ModuleDict) then
    for k, m in entries:items() do list[#list + 1] = {k, m} end
    return list
  end
  if type(entries) ~= "table" or Module.is_module(entries) then
    error(("%s: expected a table name -> module or a list of {name, module} pairs, got %s")
          :format(fname, Module.is_module(entries) and "a module" or type(entries)), level + 1)
  end
  if #entries > 0 then
    for k, e in pairs(entries) do
      if math.type(k) ~= "integer" or k < 1 or k > #entries then
        error(("%s: expected either a list of {name, module} pairs or a table " ..
               "name -> module, not both"):format(fname), level + 1)
      end
      if type(e) ~= "table" or Module.is_module(e) or #e ~= 2 then
        error(("%s: entry %d must be a pair {name, module}"):format(fname, k), level + 1)
      end
    end
    for i = 1, #entries do list[i] = {entries[i][1], entries[i][2]} end
  else
    for k, m in pairs(entries) do list[#list + 1] = {k, m} end
    for _, e in ipairs(list) do
      if type(e[1]) ~= "string" then
        error(("%s: keys must be strings, got %s"):format(fname, type(e[1])), level + 1)
      end
    end
    table.sort(list, function(a, b) return a[1] < b[1] end)
  end
  for _, e in ipairs(list) do
    local k, m = e[1], e[2]
    if type(k) ~= "string" or k == "" or k:find(".", 1, true) then
      error(("%s: keys must be non-empty strings without '.', got %s"):format(fname,
            type(k) == "string" and "'" .. k .. "'" or type(k)), level + 1)
    end
    -- a key that names a method would hide it (PyTorch refuses those too)
    if ModuleDict[k] ~= nil or k == "training" then
      error(("%s: key '%s' is the name of a ModuleDict method or field"):format(fname, k),
            level + 1)
    end
    if not Module.is_module(m) then
      error(("%s: entry '%s' is a %s, expected a module"):format(fname, k, type(m)), level + 1)
    end
  end
  return list
end

function ModuleDict:init(entries)
  if entries == nil then return end
  for _, e in ipairs(dict_entries("ModuleDict", entries, 3)) do self:add_module(e[1], e[2]) end
end

--- The number of modules.
ModuleDict._len = len

--- The names, in order.
function ModuleDict:keys()
  local out = {}
  for i, n in ipairs(rawget(self, "_modules").names) do out[i] = n end
  return out
end

--- The modules, in order.
function ModuleDict:values() return self:children() end

--- Iterator over (name, module), in order.
function ModuleDict:items() return self:named_children() end

--- True when a module is stored under name.
function ModuleDict:contains(name) return rawget(self, "_modules").map[name] ~= nil end

--- Add or replace the entries of a table, a list of pairs or another
-- ModuleDict (a replaced name keeps its position); returns self.
-- Everything is checked before anything is added.
function ModuleDict:update(entries)
  for _, e in ipairs(dict_entries("update", entries, 2)) do self:add_module(e[1], e[2]) end
  return self
end

--- Remove the module under name and return it (an error if there is none).
function ModuleDict:pop(name)
  local m = rawget(self, "_modules").map[name]
  if m == nil then
    error(("pop: no module named %s"):format(type(name) == "string" and "'" .. name .. "'"
          or type(name)), 2)
  end
  self:add_module(name, nil)
  return m
end

--- Saved as ModuleDict{{name1, m1}, ...}, in its current order.
function ModuleDict:get_config()
  local list = {}
  for k, m in self:items() do list[#list + 1] = {k, m} end
  return require("ember.nn.serialize").config_from_args(self, {list, n = 1})
end

-- }======================================================================

return {Sequential = Sequential, ModuleList = ModuleList, ModuleDict = ModuleDict}
