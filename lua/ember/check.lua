--- ember.check: the argument checks the Lua library shares (internal).
--
-- Every public function of lua/ember checks its options table and its
-- integer arguments the same way, and blames the user's line:
--
--   local check = require "ember.check"
--   function M.loader(x, opts)
--     opts = check.options("loader", opts, {batch_size = true, shuffle = true})
--     local bs = check.integer("loader", "batch_size", opts.batch_size or 1, 1)
--     ...
--   end
--
--   M.loader(x, {batchsize = 2})  --> error at the caller's line:
--                                 --  "t.lua:7: loader: unknown option 'batchsize'"
--
-- Every check takes, last, where the error points: a level counted as
-- error() counts from the function that calls the check (1 = that
-- function, 2 = its caller, the default; 0 adds no position), or a
-- function(msg) that raises (ember.blame's failer, which finds the first
-- frame outside the library).  A level counts frames, so a function does
-- not call a check as a tail call (`return check.integer(...)`): that
-- would drop its own frame.
--
-- It requires no other module when loaded (ember.format, loaded before the
-- ember table exists, uses it): tensors are recognised through ember at
-- call time.
local check = {}

local function is_tensor(v)
  return type(v) == "userdata" and require("ember").is_tensor(v)
end

--- Raise msg at `level` as the caller of the check counts it (or through
-- a failer).  Called as a statement, never in a tail call, so that the
-- check's frame stays on the stack and the count holds.
local function raise(level, msg)
  if type(level) == "function" then
    level(msg)
  elseif level == 0 then
    error(msg, 0)
  else
    error(msg, (level or 2) + 2)
  end
end

--- The level a check called by a check passes on (one frame deeper).
local function deeper(level)
  if type(level) == "function" then return level end
  return (level or 2) + 1
end

--- A value for messages: "a tensor", "nil", "2.5", "a string", "a table".
function check.kind(v)
  if is_tensor(v) then return "a tensor" end
  if v == nil then return "nil" end
  local t = type(v)
  if t == "number" then return tostring(v) end
  return (t:match("^[aeiou]") and "an " or "a ") .. t
end

--- A value's type for messages: "tensor", "number", "string", ...
function check.type_name(v)
  return is_tensor(v) and "tensor" or type(v)
end

--- check.dim(fname, d, ndim [, level]) -> d as a positive index: a
-- 1-based dimension of an ndim-d tensor, negative counting from the end;
-- a 0-d tensor takes 1 and -1, as the reductions do.
--   "<fname>: dimension must be an integer, got 1.5"
--   "<fname>: dimension 0 is invalid (dimensions count from 1)"
--   "<fname>: dimension 3 out of range for a 2-d tensor (expected 1..2)"
function check.dim(fname, d, ndim, level)
  if math.type(d) ~= "integer" then
    raise(level, ("%s: dimension must be an integer, got %s")
                 :format(fname, type(d) == "number" and tostring(d) or type(d)))
  end
  if d == 0 then
    raise(level, ("%s: dimension 0 is invalid (dimensions count from 1)"):format(fname))
  end
  local n = math.max(ndim, 1)
  if d > n or d < -n then
    raise(level, ("%s: dimension %d out of range for a %d-d tensor (expected 1..%d)")
                 :format(fname, d, ndim, n))
  end
  return d > 0 and d or n + d + 1
end

--- Edit distance (insertions, deletions, substitutions) of strings a, b.
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = {[0] = i}
    for j = 1, #b do
      local sub = prev[j - 1] + (a:byte(i) == b:byte(j) and 0 or 1)
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, sub)
    end
    prev = cur
  end
  return prev[#b]
end

--- check.suggest(key, names) -> the name in the list `names` that key was
-- likely a misspelling of, or nil: the nearest within edit distance 2
-- (and shorter than both words, so that 'x' does not suggest 'lr'), or one
-- that key begins or that begins with key; the first such in the list on
-- a tie.  l_suggest in bindings/lua_data.c does the same in C.
function check.suggest(key, names)
  if type(key) ~= "string" then return nil end
  local best, bd
  for _, name in ipairs(names) do
    if type(name) == "string" then   -- (a list may hold other keys, e.g. [1])
      local d = distance(key, name)
      local near = d <= 2 and d < #key and d < #name
      local prefix = #key >= 2 and (name:sub(1, #key) == key or key:sub(1, #name) == name)
      if (near or prefix) and (not bd or d < bd) then best, bd = name, d end
    end
  end
  return best
end

--- check.options(fname, opts, known [, level]) -> opts, or {} for nil.
-- known names the options: its keys (a set, or a table of defaults where
-- false is a value like any other), or its values when it is a list
-- ({"bucket_mb", "broadcast_buffers"}), and then the message lists them.
--   "<fname>: options must be a table, got number"
--   "<fname>: unknown option 'epoch'; did you mean 'epochs'?"
--   "<fname>: unknown option 'bucket'; did you mean 'bucket_mb'? (known: bucket_mb, broadcast_buffers)"
function check.options(fname, opts, known, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" or is_tensor(opts) then
    raise(level, ("%s: options must be a table, got %s"):format(fname, check.type_name(opts)))
  end
  local list = known[1] ~= nil
  for k in pairs(opts) do
    local ok
    if list then
      ok = false
      for _, name in ipairs(known) do
        if k == name then ok = true break end
      end
    else
      ok = known[k] ~= nil
    end
    if not ok then
      local msg = ("%s: unknown option '%s'"):format(fname, tostring(k))
      local names = known
      if not list then
        names = {}
        for name in pairs(known) do
          if type(name) == "string" then names[#names + 1] = name end
        end
        table.sort(names)   -- a tie picks the same name every run
      end
      local near = check.suggest(k, names)
      if near then msg = msg .. ("; did you mean '%s'?"):format(near) end
      if list then msg = msg .. " (known: " .. table.concat(known, ", ") .. ")" end
      raise(level, msg)
    end
  end
  return opts
end

--- check.defaults(fname, opts, defaults [, level]) -> a new table: the
-- defaults, overridden by the (checked) options.
function check.defaults(fname, opts, defaults, level)
  check.options(fname, opts, defaults, deeper(level))
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  if opts then
    for k, v in pairs(opts) do o[k] = v end
  end
  return o
end

--- check.integer(fname, what, v [, min [, level]]) -> v as an integer (a
-- float with an integral value counts).  `what` names the argument
-- ("batch_size", "argument #2").
--   "<fname>: batch_size must be an integer, got 2.5"
--   "<fname>: batch_size must be >= 1, got 0"
function check.integer(fname, what, v, min, level)
  local i = math.type(v) == "integer" and v or
            (type(v) == "number" and math.tointeger(v)) or nil
  if not i then
    raise(level, ("%s: %s must be an integer, got %s"):format(fname, what, check.kind(v)))
  end
  if min and i < min then
    raise(level, ("%s: %s must be >= %d, got %d"):format(fname, what, min, i))
  end
  return i
end

--- check.boolean(fname, what, v [, level]) -> v (nil passes: "not given").
--   "<fname>: shuffle must be a boolean, got a string"
function check.boolean(fname, what, v, level)
  if v ~= nil and type(v) ~= "boolean" then
    raise(level, ("%s: %s must be a boolean, got %s"):format(fname, what, check.kind(v)))
  end
  return v
end

return check
