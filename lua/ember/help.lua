-- help.lua -- ember.help(x): the reference entry of a function, class,
-- method, object or name, printed from docs/*.md as compiled into the
-- binding library (tools/embed_lua.lua --docs): the docs are the one text,
-- so what help prints is what docs/ says, example included.
--
-- An entry is a heading and its text up to the next heading of the same or
-- a higher level.  Names come from the headings ("### ember.zeros(size...),
-- ember.ones(...)" gives "zeros" and "ones"), then from the first cells of
-- reference tables ("| `t:sum()` |" under "## Reductions").  Objects are
-- named by walking the ember tables once (function -> "nn.Linear", tensor
-- methods -> "Tensor:sum", a module's metatable -> its class).
local ember = require "ember"
local check = require "ember.check"

-- ember.core._docs, copied into ember by init.lua: kept here only (a
-- second require "ember.core" would open the bindings again)
local compiled_docs = ember._docs
ember._docs = nil

-- The reference files first: a bare name found in several files lists
-- them in this order, and the first file's entry wins a table-cell name.
local FIRST = {"lua-api.md", "nn.md", "optim.md", "data.md", "training.md"}

-- Receivers of methods in headings ("t:sum", "model:fit") as classes.
local RECEIVERS = {m = "Module", model = "Module", module = "Module",
                   opt = "Optimizer", optimizer = "Optimizer"}

local NO_ENTRY = "help: no entry for %s; try help() or help'topic'"

local docs            -- {files = {name...}, sections = {...}, keys = {...}}

-- the names written outside brackets in a heading or table cell:
-- "nn.Sequential{m1, ...}, nn.Sequential(m1, ...)" -> nn.Sequential twice
local function names_in(text)
  text = text:gsub("%(`([^`]*)`%)", " %1 ")     -- "Metrics (`ember.metrics`)"
              :gsub("`", ""):gsub("%b()", ""):gsub("%b[]", ""):gsub("%b{}", "")
  local out = {}
  for name in text:gmatch("[%a_][%w_]*[%.:][%w_%.:]*[%w_]") do
    out[#out + 1] = name
  end
  return out
end

-- "ember.zeros" -> "zeros"; "t:sum" -> "Tensor:sum" (a receiver that is
-- no table of ember is a variable: Tensor in lua-api.md, else by its name)
local function canonical(name, default_class)
  name = name:gsub("^ember%.", ""):gsub("^nn%.F%.", "nn.functional.")
             :gsub("^F%.", "nn.functional.")
  local head, sep, rest = name:match("^([%a_][%w_]*)([%.:])(.*)$")
  if head and type(ember[head]) ~= "table" and head:match("^%l") then
    local class = RECEIVERS[head] or default_class
    if class then return class .. sep .. rest end
  end
  return name
end

-- Index the compiled docs: each heading outside code fences is a section
-- from its first byte to the byte before the next heading of its level or
-- higher; keys map names to sections.
local function load_docs()
  if docs then return docs end
  local texts = compiled_docs()
  local files, seen = {}, {}
  for _, f in ipairs(FIRST) do
    if texts[f] then files[#files + 1] = f; seen[f] = true end
  end
  local rest = {}
  for f in pairs(texts) do if not seen[f] then rest[#rest + 1] = f end end
  table.sort(rest)
  for _, f in ipairs(rest) do files[#files + 1] = f end

  local sections, keys, cells = {}, {}, {}
  local function add(map, key, s)
    local list = map[key]
    if not list then list = {}; map[key] = list end
    for _, t in ipairs(list) do if t == s then return end end
    list[#list + 1] = s
  end
  for _, file in ipairs(files) do
    local text = texts[file]
    local default_class = file == "lua-api.md" and "Tensor" or nil
    -- ns: the module a section's prose names first (`nn.functional`), for
    -- the bare calls of its table (`relu(x)` -> nn.functional.relu)
    local open, fence, current, ns = {}, false, nil, nil
    local pos = 1
    for line, nextpos in text:gmatch("([^\n]*)\n?()") do
      if pos > #text then break end
      if line:match("^%s*```") then fence = not fence
      elseif not fence and line:match("^#+%s") then
        local hashes, title = line:match("^(#+)%s+(.-)%s*$")
        local level = #hashes
        -- a file's title (level 1) covers its introduction only: the
        -- whole file would be the whole reference
        for l = level, 6 do
          if open[l] then open[l].stop = pos - 1; open[l] = nil end
        end
        if open[1] then open[1].stop = pos - 1; open[1] = nil end
        current = {file = file, level = level, title = title, start = pos,
                   stop = #text, text = text}
        ns = nil
        open[level] = current
        sections[#sections + 1] = current
        for _, name in ipairs(names_in(title)) do
          add(keys, canonical(name, default_class), current)
        end
      elseif current and (line:match("^|") or line:match("^%- `")) then
        local cell = line:match("^|([^|]*)") or line:match("^%- (`[^`]*`)") or ""
        for span in cell:gmatch("`([^`]*)`") do   -- calls only: `t:sum()`
          for name in span:gmatch("([%a_][%w_]*[%.:][%w_%.:]*[%w_])%s*[%({]") do
            local key = canonical(name, default_class)
            if not cells[key] then cells[key] = current end
          end
          local bare = ns and span:match("^([%a_][%w_]*)%s*%(")
          if bare and not cells[ns .. "." .. bare] then cells[ns .. "." .. bare] = current end
        end
      elseif current and not ns and not fence then
        for span in line:gmatch("`([%a_][%w_%.]*)`") do
          local head = span:gsub("^ember%.", ""):match("^[%a_][%w_]*")
          if type(ember[head]) == "table" and span:find(".", 1, true) then
            ns = span:gsub("^ember%.", "")
            break
          end
        end
      end
      pos = nextpos
    end
  end
  -- a name only a table mentions: its first table's section
  for key, s in pairs(cells) do
    if not keys[key] then keys[key] = {s} end
  end
  -- a tensor's entry is ember.tensor's
  keys.Tensor = keys.Tensor or keys.tensor
  -- ember's own is the reference's introduction, which lists its sections
  -- (as nn.md's title section is ember.nn's)
  if not keys.ember then
    for _, s in ipairs(sections) do
      if s.file == "lua-api.md" and s.level == 1 then keys.ember = {s} break end
    end
  end
  docs = {files = files, sections = sections, keys = keys, texts = texts}
  return docs
end

local function entry_text(s)
  return (s.text:sub(s.start, s.stop):gsub("%s+$", ""))
end

-- {value -> {names}}: functions and classes under the ember tables by
-- their qualified names (shortest first), tensor methods as "Tensor:name",
-- a class's instance metatable (__mt) as the class.
local objects
local function object_names()
  if objects then return objects end
  objects = {}
  local function name(v, n)
    local list = objects[v]
    if not list then list = {}; objects[v] = list end
    list[#list + 1] = n
  end
  for _, methods in ipairs({ember.Tensor}) do
    for k, v in pairs(methods) do
      if type(k) == "string" and type(v) == "function" then name(v, "Tensor:" .. k) end
    end
  end
  name(ember, "ember")
  local queue, visited = {{ember, ""}}, {[ember] = true}
  local i = 1
  while queue[i] do     -- breadth first: ember.sum before ember.Tensor.sum
    local t, prefix = queue[i][1], queue[i][2]
    i = i + 1
    local ks = {}
    for k in pairs(t) do
      if type(k) == "string" and k:match("^[%a][%w_]*$") then ks[#ks + 1] = k end
    end
    table.sort(ks)
    for _, k in ipairs(ks) do
      local v, n = rawget(t, k), prefix .. k
      if type(v) == "function" then name(v, n)
      elseif type(v) == "table" and not visited[v] and #prefix < 40 then
        visited[v] = true
        name(v, n)
        if type(rawget(v, "__mt")) == "table" then name(v.__mt, n) end
        queue[#queue + 1] = {v, n .. "."}
      end
    end
  end
  return objects
end

-- the sections of a string key, or nil
local function lookup(key)
  local d = load_docs()
  local found = d.keys[canonical(key, "Tensor")] or d.keys[key]
  if found then return found end
  local lower = key:lower()
  for _, s in ipairs(d.sections) do     -- a heading's whole title
    if s.title:lower():gsub("`", "") == lower then return {s} end
  end
end

-- the keys whose last part is `bare` ("sum" -> Tensor:sum, ...)
local function by_last_name(bare)
  local d, out, seen = load_docs(), {}, {}
  for key, list in pairs(d.keys) do
    if key:match("[%.:]([%w_]+)$") == bare then
      for _, s in ipairs(list) do
        if not seen[s] then
          seen[s] = true
          out[#out + 1] = {key = key, section = s}
        end
      end
    end
  end
  table.sort(out, function(a, b) return a.key < b.key end)
  return out
end

-- the value a REPL expression names ("t:sum" -> t.sum), or nil
local function evaluate(expr)
  local root, path = expr:match("^([%a_][%w_]*)(.*)$")
  if not root then return nil end
  -- every read under a pcall: _G too may have an __index that raises
  -- (a strict mode for globals)
  local v = _G
  for field in (root .. path):gmatch("([%a_][%w_]*)") do
    if v == nil then return nil end
    local ok, r = pcall(function() return v[field] end)
    if not ok then return nil end
    v = r
  end
  if path:gsub("[%.:][%a_][%w_]*", "") ~= "" then return nil end
  return v
end

-- the sections for a value (function, class, instance, tensor), or nil
local function for_object(x)
  if ember.is_tensor(x) then return lookup("Tensor") end
  local names = object_names()
  local list = names[x]
  if not list and type(x) == "table" then list = names[getmetatable(x)] end
  if not list then return nil end
  local out, seen = {}, {}
  for _, n in ipairs(list) do
    for _, s in ipairs(lookup(n) or {}) do
      if not seen[s] then seen[s] = true; out[#out + 1] = s end
    end
  end
  if #out == 0 then      -- a method documented under its bare name only
    local bare = list[1]:match("([%w_]+)$")
    for _, hit in ipairs(by_last_name(bare)) do out[#out + 1] = hit.section end
  end
  if #out == 0 then      -- an undocumented method: its class's entry
    out = lookup(list[1]:match("^(.+)[%.:][%w_]+$") or "") or {}
  end
  return #out > 0 and out or nil, list[1]
end

local function listing()
  local d = load_docs()
  local lines = {"Ember reference: help(f), help'name' (as help'ember.zeros', "
                 .. "help'Tensor:sum', help'nn.Linear') or ?name in the REPL."}
  for _, file in ipairs(d.files) do
    local first = true
    for _, s in ipairs(d.sections) do
      if s.file == file and s.level == 1 and first then
        lines[#lines + 1] = ("%s: %s"):format(file, s.title)
        first = false
      elseif s.file == file and s.level == 2 then
        lines[#lines + 1] = "  " .. s.title
      end
    end
  end
  return table.concat(lines, "\n")
end

local function describe(x)
  if type(x) == "string" then return ("'%s'"):format(x) end
  return ("a %s"):format(check.type_name(x))
end

--- ember.help([x] [, {print_fn = print}]): prints the reference entry of x
-- (a function, class, method, module, tensor or name), or with no x the
-- list of sections.  Several entries for a bare name list their names.
function ember.help(x, opts)
  check.options("help", opts, {print_fn = true}, 2)
  local out = opts and opts.print_fn or print
  if type(out) ~= "function" then
    error("help: print_fn must be a function, got " .. check.type_name(out), 2)
  end
  if x == nil then out(listing()); return end
  local sections, name
  if type(x) == "string" then
    local key = x:match("^%s*(.-)%s*$")
    -- what the name is bound to first (`?m:forward` with m a module in
    -- the REPL), then the name as the docs write it
    local v = evaluate(key)
    if v ~= nil and type(v) ~= "string" then sections = for_object(v) end
    sections = sections or lookup(key)
    if not sections and key:match("^[%a_][%w_%.:]*$") and key:match("[%w_]$") then
      local hits = by_last_name(key:match("([%w_]+)$"))
      if #hits == 1 then sections = {hits[1].section}
      elseif #hits > 1 then
        local lines = {("help: several entries for '%s':"):format(key)}
        for _, h in ipairs(hits) do
          lines[#lines + 1] = ("  help'%s'  (%s: %s)"):format(h.key, h.section.file,
                                                             h.section.title)
        end
        out(table.concat(lines, "\n"))
        return
      end
    end
  else
    sections, name = for_object(x)
  end
  if not sections then
    out(NO_ENTRY:format(name and ("'" .. name .. "'") or describe(x)))
    return
  end
  local parts = {}
  for _, s in ipairs(sections) do parts[#parts + 1] = entry_text(s) end
  out(table.concat(parts, "\n\n"))
end

return true
