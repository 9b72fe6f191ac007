--- ember.data.csv: tabular data from a CSV file (RFC 4180) as tensors.
--
-- data.csv(path [, opts]) -> x (N, F) [, y (N) [, classes]]
--
-- In one pass: the whole file is read at once and split line by line,
-- each record's features converted as it is split.  After the first
-- record, runs of plain records (no double quote, the right field count,
-- plain decimal features) go through the C scanner ember._csv_scan
-- (core/io_csv.c); it stops at the first record it cannot take, which the
-- Lua code here handles as before (so every odd case and every error
-- message is this file's), and is called again after it.  Rows go into a
-- C buffer that becomes x in one copy, and plain numeric targets or class
-- names are mapped in C (100k rows of 10 columns in about 60 ms, against
-- 500 ms all in Lua).  A line without a double quote is split with
-- gmatch; a line with one goes through the quote-aware parser, which may
-- take the following lines too when a quoted field holds a newline.
-- Without ember._csv_scan (the specs remove it to compare) all is Lua.
local ember = require "ember"
local check = require "ember.check"
local blame = require "ember.blame"

--- Raise msg at the user's call, whichever helper here finds the fault.
local raise = blame.failer("ember/data_csv.lua")

local FLOATS = {float32 = true, float64 = true}

--- Lua's tonumber, less what a CSV number never is (hexadecimal), plus
-- the spellings of NaN and infinity that pandas and numpy write.
local SPECIAL = {nan = 0 / 0, inf = math.huge, ["+inf"] = math.huge, ["-inf"] = -math.huge,
                 infinity = math.huge, ["+infinity"] = math.huge, ["-infinity"] = -math.huge}
local function to_number(s)
  local v = tonumber(s)
  if v then
    if s:find("[xX]") then return nil end
    return v
  end
  return SPECIAL[s:match("^%s*(.-)%s*$"):lower()]
end

--- The fields of one record starting at `pos` in `text`, quotes honoured;
-- returns the fields, the position after the record's line end, and the
-- number of line ends consumed inside quoted fields.  `err(col, msg)`
-- raises with the record's line.
local function split_quoted(text, pos, sep, err)
  local fields, n, extra = {}, 0, 0
  local len = #text
  local stop_at = "[" .. (sep:find("%p") and "%" or "") .. sep .. "\n]"
  while true do
    n = n + 1
    if text:sub(pos, pos) == '"' then
      local parts, p = {}, pos + 1
      while true do
        local q = text:find('"', p, true)
        if not q then err(n, "a quoted field is not closed before the end of the file") end
        parts[#parts + 1] = text:sub(p, q - 1)
        if text:sub(q + 1, q + 1) == '"' then          -- "" inside quotes: one "
          parts[#parts + 1] = '"'
          p = q + 2
        else
          p = q + 1
          break
        end
      end
      local field = table.concat(parts)
      for _ in field:gmatch("\n") do extra = extra + 1 end
      fields[n] = field
      local c = text:sub(p, p)
      if c == sep then
        pos = p + 1
      elseif c == "\n" or c == "" then
        return fields, p + 1, extra
      elseif c == "\r" and (text:sub(p + 1, p + 1) == "\n" or p == len) then
        return fields, p + 2, extra
      else
        err(n, ("unexpected %q after the closing quote of a quoted field"):format(c))
      end
    else
      local stop = text:find(stop_at, pos) or len + 1
      local field = text:sub(pos, stop - 1)
      local c = text:sub(stop, stop)
      if c == sep then
        fields[n] = field
        pos = stop + 1
      else
        fields[n] = field:gsub("\r$", "")
        return fields, stop + 1, extra
      end
    end
  end
end

--- Call visit(fields, n, line) for every record of `text`: its n fields
-- and the line it starts on; blank lines are skipped.  `fields` may be
-- reused for the next record (copy what must outlive the call).  Before
-- each record, fast(pos, line) (when given) may consume records itself
-- and returns where to go on.
local function records(text, sep, fail, visit, fast)
  local pos, line, len = 1, 1, #text
  local esc = sep:find("%p") and "%" .. sep or sep
  local field_at = "([^" .. esc .. "]*)" .. esc     -- a field and its separator
  local row = {}
  if text:sub(1, 3) == "\239\187\191" then pos = 4 end   -- a UTF-8 byte order mark
  while pos <= len do
    if fast then
      pos, line = fast(pos, line)
      if pos > len then break end
    end
    local nl = text:find("\n", pos, true) or len + 1
    local s = text:sub(pos, nl - 1)
    if s:byte(-1) == 13 then s = s:sub(1, -2) end      -- CRLF
    local extra = 0
    if s == "" then
      pos = nl + 1
    elseif not s:find('"', 1, true) then
      local n = 0
      for field in (s .. sep):gmatch(field_at) do
        n = n + 1
        row[n] = field
      end
      pos = nl + 1
      visit(row, n, line)
    else
      local here, fields = line, nil
      fields, pos, extra = split_quoted(text, pos, sep, function(col, msg)
        fail("line %d, column %d: %s", here, col, msg)
      end)
      visit(fields, #fields, line)
    end
    line = line + 1 + extra
  end
end

--- Resolve a column given by name or 1-based index (negative from the end)
-- against the header; `what` names it in errors.
local function column(spec, header, ncol, fail, what)
  if math.type(spec) == "integer" then
    local c = spec < 0 and ncol + 1 + spec or spec
    if c < 1 or c > ncol then
      fail("%s column %d is out of range (the file has %d columns)", what, spec, ncol)
    end
    return c
  elseif type(spec) == "string" then
    if not header then
      fail("%s column '%s' is given by name, but header = false (give its index)", what, spec)
    end
    for c, name in ipairs(header) do
      if name == spec then return c end
    end
    fail("%s column '%s' is not in the header (columns: %s)", what, spec,
         table.concat(header, ", "))
  end
  fail("%s column must be a name or an integer index, got %s", what, check.kind(spec))
end

local function csv(path, opts)
  if type(path) ~= "string" then
    raise(("csv: path must be a string, got %s"):format(check.kind(path)))
  end
  opts = check.options("csv", opts, {"header", "target", "columns", "dtype", "sep"}, raise)
  local function fail(fmt, ...) raise(("csv: '%s' "):format(path) .. fmt:format(...)) end
  local function bad_opt(fmt, ...) raise("csv: " .. fmt:format(...)) end
  local header_on = opts.header
  if header_on == nil then header_on = true end
  if type(header_on) ~= "boolean" then
    bad_opt("header must be a boolean, got %s", check.kind(header_on))
  end
  local sep = opts.sep or ","
  if type(sep) ~= "string" or #sep ~= 1 or sep == '"' or sep == "\n" or sep == "\r" then
    bad_opt("sep must be one character other than a quote or a line end, got %s",
            type(sep) == "string" and ("%q"):format(sep) or check.kind(sep))
  end
  local dtype = opts.dtype or "float32"
  if not FLOATS[dtype] then
    bad_opt("dtype must be 'float32' or 'float64', got %s", tostring(dtype))
  end
  if opts.columns ~= nil and (type(opts.columns) ~= "table" or ember.is_tensor(opts.columns)) then
    bad_opt("columns must be a list of names or indices, got %s", check.kind(opts.columns))
  end

  local f, msg = io.open(path, "rb")
  if not f then
    if msg:sub(1, #path + 2) == path .. ": " then msg = msg:sub(#path + 3) end
    fail("cannot be opened: %s", msg)
  end
  local text, rerr = f:read("a")
  f:close()
  if not text then fail("cannot be read: %s", rerr) end

  -- one pass: the first record fixes the columns, every later one is
  -- checked and its features converted as it is split
  local header, ncol, tcol, feats, nf, roles
  local flat, k, n, targets, tlines = {}, 0, 0, {}, {}
  local function start(r, cnt)
    ncol = cnt
    if header_on then header = table.move(r, 1, cnt, 1, {}) end
    tcol = opts.target ~= nil and column(opts.target, header, ncol, fail, "target") or nil
    feats = {}
    if opts.columns then
      for _, spec in ipairs(opts.columns) do
        local c = column(spec, header, ncol, fail, "feature")
        if c == tcol then fail("feature column %s is also the target", tostring(spec)) end
        feats[#feats + 1] = c
      end
      if #feats == 0 then bad_opt("columns is empty (give at least one feature column)") end
    else
      for c = 1, ncol do
        if c ~= tcol then feats[#feats + 1] = c end
      end
    end
    nf = #feats
    -- each column's role for the scanner: its 0-based slot among the
    -- features, or -1 (skipped) / -2 (the target, handed back as text);
    -- a column listed twice in `columns` has two slots: Lua's alone then
    roles = {}
    for c = 1, ncol do roles[c] = c == tcol and -2 or -1 end
    for j, c in ipairs(feats) do
      if roles[c] >= 0 then roles = nil; break end
      roles[c] = j - 1
    end
  end
  -- with the C scanner, rows go to a C buffer (ember._csv_buf) that
  -- becomes the tensors in one copy: scanned rows keep their target as a
  -- span of text, rows taken here append through _csv_record and keep
  -- their target string in ltargets.  Without it (the specs remove it to
  -- compare) rows go to the Lua tables flat and targets.
  local scan = ember._csv_scan
  local buf = scan and ember._csv_buf()
  local vals, ltargets, empty_line = {}, {}, nil
  local fast = scan and function(pos, line)
    if not roles then return pos, line end
    pos, line, n = scan(text, pos, line, sep, roles, buf)
    return pos, line
  end
  records(text, sep, fail, function(r, cnt, line)
    if not ncol then
      start(r, cnt)
      if header_on then return end
    end
    if cnt ~= ncol then
      fail("line %d has %d fields, %s has %d", line, cnt,
           header and "the header" or "the first line", ncol)
    end
    n = n + 1
    for j = 1, nf do
      local c = feats[j]
      local s = r[c]
      local v = tonumber(s)
      if not v or s:find("[xX]") then
        v = to_number(s)
        if not v then
          fail("line %d, column %d%s: %s is not a number", line, c,
               header and (" ('%s')"):format(header[c]) or "", ("%q"):format(s))
        end
      end
      if buf then
        vals[j] = v
      else
        k = k + 1
        flat[k] = v
      end
    end
    if buf then
      ember._csv_record(buf, vals, nf)
      if tcol then
        ltargets[n] = r[tcol]
        if r[tcol] == "" and not empty_line then empty_line = line end
      end
    elseif tcol then
      targets[n], tlines[n] = r[tcol], line
    end
  end, fast)
  if not ncol then fail("is empty") end
  local x = buf and ember._csv_x(buf, nf, dtype) or ember.tensor(flat, {dtype = dtype}):view(n, nf)
  if not tcol then return x end

  local function empty_target(line)
    fail("line %d, column %d%s: the target is empty", line, tcol,
         header and (" ('%s')"):format(header[tcol]) or "")
  end
  if buf then
    -- the scanner takes no empty target, so the first empty one is a Lua
    -- row's; then the common cases in C: plain numbers, or class names
    if empty_line then empty_target(empty_line) end
    local y, odd = ember._csv_numeric_y(buf, text, ltargets, dtype)
    if y then return x, y end
    if not to_number(odd) then
      local classes = ember._csv_classes(buf, text, ltargets)
      table.sort(classes)
      local index = {}
      for c, name in ipairs(classes) do index[name] = c end
      return x, ember._csv_class_y(buf, text, ltargets, index), classes
    end
    targets = ember._csv_targets(buf, text, ltargets)   -- nan, inf...: below
  end

  -- the target: numbers when every value is one (int64 when every value is
  -- written as an integer), else class names mapped to 1..C in sorted order
  local yv, numeric, integer = {}, true, true
  for i = 1, n do
    local s = targets[i]
    if s == "" then empty_target(tlines[i]) end
    local v = numeric and to_number(s)
    if not v then
      numeric = false
    else
      yv[i] = v
      if math.type(v) ~= "integer" then integer = false end
    end
  end
  if numeric then
    return x, ember.tensor(yv, {dtype = integer and "int64" or dtype})
  end
  local index, classes = {}, {}
  for i = 1, n do
    local s = targets[i]
    if not index[s] then index[s] = true; classes[#classes + 1] = s end
  end
  table.sort(classes)
  for c, name in ipairs(classes) do index[name] = c end
  for i = 1, n do yv[i] = index[targets[i]] end
  return x, ember.tensor(yv, {dtype = "int64"}), classes
end

return csv
