--- Sequential: calls its layers in order.  Built from a list
-- (Sequential{a, b}) or from arguments (Sequential(a, b)); the layers are
-- children named "1", "2", ... (1-based), so seq[i] is the i-th layer and
-- #seq their number.
local Module = require "ember.nn.module"

local Sequential = Module:extend("Sequential")

function Sequential:init(...)
  local layers = {...}
  if select("#", ...) == 1 and type(layers[1]) == "table" and not Module.is_module(layers[1]) then
    layers = layers[1]
  end
  for k in pairs(layers) do
    if math.type(k) ~= "integer" or k < 1 or k > #layers then
      error("Sequential: expected a list of modules (named entries are not supported)", 3)
    end
  end
  for i = 1, #layers do
    if not Module.is_module(layers[i]) then
      error(("Sequential: layer %d is a %s, expected a module"):format(i, type(layers[i])), 3)
    end
    self:add_module(tostring(i), layers[i])
  end
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

function Sequential:forward(x, ...)
  local n, i = #self, 1
  while i <= n do
    local m = self[i]
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

function Sequential:_len() return #rawget(self, "_modules").names end

--- The config lists the layers it has now (not those it was built with),
-- so a model grown with add() is saved as it is.
function Sequential:get_config()
  local serialize = require "ember.nn.serialize"
  local layers = {n = #self}
  for i, name in ipairs(rawget(self, "_modules").names) do
    if name ~= tostring(i) then
      serialize.fail(("%s: layer %d of Sequential is named '%s'; only layers named by their " ..
                      "position (1, 2, ...) can be saved"):format(serialize.fname("get_config"),
                                                                  i, name))
    end
    layers[i] = self[i]
  end
  return serialize.config_from_args(self, layers)
end

--- seq[i]: the i-th layer; negative i counts from the end.
function Sequential:_index_number(i)
  local n = #self
  if i < 0 then i = n + 1 + i end
  return rawget(self, "_modules").map[tostring(i)]
end

return {Sequential = Sequential}
