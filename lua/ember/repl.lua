--- ember.repl: how the `ember` REPL shows the values an expression gives
-- (bindings/ember_main.c calls `print` with them).
--
--   - one value prints alone; several print on separate lines labelled
--     "[1] ", "[2] ", ... (a tensor's later lines indented under its first);
--   - a tensor prints as tostring does (ember.format); inside a table it is
--     summed up on one line as `tensor(float32, {2, 3})`;
--   - a table with a __tostring prints through it; a state dict (a table
--     of tensors, all keys strings) prints one line per entry, name, dtype
--     and shape, sorted by name; fit's history prints its lists
--     (epoch, loss, metrics, ...);
--   - other tables print as Lua constructors, on one line when it fits in
--     LINEWIDTH columns, else one entry per line, indented; the array part
--     comes first, then the other keys sorted. More than MAXITEMS entries
--     are cut with "...", tables deeper than MAXDEPTH show as {...}, and a
--     table met again inside itself as <cycle>;
--   - anything else prints as tostring (a string without quotes at the
--     top level, quoted inside a table).
-- "ember", not "ember.core": init.lua unloads ember.core after taking it
local ember = require "ember"

local M = {}

local MAXITEMS, MAXDEPTH, LINEWIDTH = 20, 3, 80
local INDENT = "  "

local function is_tensor(v)
  return type(v) == "userdata" and ember.is_tensor(v)
end

local function shape_str(t)
  local s = t:shape()
  local parts = {}
  for i = 1, #s do parts[i] = tostring(s[i]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function tensor_summary(t)
  return ("tensor(%s, %s)"):format(t.dtype, shape_str(t))
end

local function quote(s)
  return (("%q"):format(s):gsub("\\\n", "\\n"))
end

local function is_identifier(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local function key_str(k)
  if is_identifier(k) then return k end
  return "[" .. (type(k) == "string" and quote(k) or tostring(k)) .. "]"
end

-- Keys in print order: 1..n of the array part, then the rest sorted
-- (numbers before strings before others, each in their own order).
local RANK = {number = 1, string = 2}
local function ordered_keys(t)
  local n = #t
  local rest = {}
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then
      rest[#rest + 1] = k
    end
  end
  table.sort(rest, function(a, b)
    local ra, rb = RANK[type(a)] or 3, RANK[type(b)] or 3
    if ra ~= rb then return ra < rb end
    if ra == 3 then return tostring(a) < tostring(b) end
    return a < b
  end)
  return n, rest
end

local function is_history(t)
  return type(rawget(t, "history")) == "table" and type(rawget(t, "epoch")) == "table"
end

local function is_state_dict(t)
  if getmetatable(t) ~= nil or next(t) == nil then return false end
  for k, v in pairs(t) do
    if type(k) ~= "string" or not is_tensor(v) then return false end
  end
  return true
end

-- fit's history as the table of its lists: epoch, then history's fields.
local function history_lists(h)
  local lists = {epoch = rawget(h, "epoch")}
  for k, v in pairs(rawget(h, "history")) do lists[k] = v end
  if rawget(h, "stopped") ~= nil then lists.stopped = rawget(h, "stopped") end
  return lists
end

local show  -- forward: value -> lines

-- A table's lines, at nesting `depth` (1 at the top); `seen` holds the
-- tables being printed, to cut cycles.
local function show_table(t, depth, seen)
  if seen[t] then return {"<cycle>"} end
  if depth > MAXDEPTH then return {"{...}"} end
  seen[t] = true
  local n, rest = ordered_keys(t)
  local entries, total = {}, n + #rest
  local function add(key, v)
    local lines = show(v, depth + 1, seen)
    if key then lines[1] = key_str(key) .. " = " .. lines[1] end
    entries[#entries + 1] = lines
  end
  for i = 1, math.min(n, MAXITEMS) do add(nil, t[i]) end
  for i = 1, math.min(#rest, MAXITEMS - #entries) do add(rest[i], t[rest[i]]) end
  seen[t] = nil
  local cut = total > #entries
  -- one line when every entry is one line and the whole fits
  local flat = true
  local parts = {}
  for i, e in ipairs(entries) do
    if #e > 1 then flat = false break end
    parts[i] = e[1]
  end
  if cut then parts[#parts + 1] = ("... (%d entries)"):format(total) end
  local room = LINEWIDTH - (depth - 1) * #INDENT
  if flat then
    local line = "{" .. table.concat(parts, ", ") .. "}"
    if #line <= room then return {line} end
    -- too long for one line: as many entries a line as fit (long lists)
    local out, cur = {"{"}, INDENT
    for i, p in ipairs(parts) do
      local item = p .. (i < #parts and "," or "")
      if cur ~= INDENT and #cur + 1 + #item > room then
        out[#out + 1] = cur
        cur = INDENT
      end
      cur = cur .. (cur == INDENT and "" or " ") .. item
    end
    out[#out + 1] = cur
    out[#out + 1] = "}"
    return out
  end
  local out = {"{"}
  for _, e in ipairs(entries) do
    for j, l in ipairs(e) do
      out[#out + 1] = INDENT .. l .. (j == #e and "," or "")
    end
  end
  if cut then out[#out + 1] = INDENT .. parts[#parts] end
  out[#out + 1] = "}"
  return out
end

local function split_lines(s)
  local lines = {}
  for l in (s .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
  return lines
end

local function state_dict_lines(t)
  local names, width = {}, 0
  for k in pairs(t) do
    names[#names + 1] = k
    width = math.max(width, #k)
  end
  table.sort(names)
  local out = {}
  for i, k in ipairs(names) do
    out[i] = ("%-" .. width .. "s  %-8s %s"):format(k, t[k].dtype, shape_str(t[k]))
  end
  return out
end

function show(v, depth, seen)
  if is_tensor(v) then
    return {depth > 1 and tensor_summary(v) or tostring(v)}
  elseif type(v) == "string" then
    return {depth > 1 and quote(v) or v}
  elseif type(v) ~= "table" then
    return {tostring(v)}
  end
  local mt = getmetatable(v)
  if type(mt) == "table" and rawget(mt, "__tostring") then
    return {tostring(v)}
  elseif is_history(v) then
    return show_table(history_lists(v), depth, seen)
  elseif depth == 1 and is_state_dict(v) then
    return state_dict_lines(v)
  end
  return show_table(v, depth, seen)
end

--- The lines the REPL prints for one value (a string with newlines).
function M.format(v)
  local lines = {}
  for _, l in ipairs(show(v, 1, {})) do
    for _, s in ipairs(split_lines(l)) do lines[#lines + 1] = s end
  end
  return table.concat(lines, "\n")
end

--- Print the results of one REPL entry.
function M.print(...)
  local n = select("#", ...)
  if n == 1 then
    io.write(M.format((...)), "\n")
    return
  end
  for i = 1, n do
    local label = ("[%d] "):format(i)
    local text = M.format((select(i, ...)))
    io.write(label, (text:gsub("\n", "\n" .. (" "):rep(#label))), "\n")
  end
  io.flush()
end

return M
