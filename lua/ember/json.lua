--- ember.json: a small strict JSON encoder and decoder (RFC 8259).
--
-- Model files carry their architecture as JSON text in the safetensors
-- header (see ember.nn.serialize), so what this writes must read back in
-- any JSON reader (Python's json module included), and read back here with
-- every value's Lua type intact:
--   * Integers are written without '.' or exponent, floats always with one
--     (the shortest of %.15g/%.16g/%.17g that reads back exactly, so 1.0 is
--     "1.0" and 0.1 is "0.1").  Decoding gives an integer for a number
--     written without '.', 'e' or 'E' (a float if it does not fit in 64
--     bits) and a float otherwise.  NaN and the infinities have no JSON
--     form: encode raises.
--   * Objects are written with their keys sorted, so one value always gives
--     the same text.
--   * null decodes to json.null, a unique sentinel that encode writes back
--     as null, so arrays keep their length and their holes.
--   * A table is an array when its keys are exactly 1..n, an object when
--     they are all strings.  An empty table is {} unless made with
--     json.array(), which marks a table as an array.
--   * Strings must be valid UTF-8 both ways; \u escapes (with surrogate
--     pairs) decode to UTF-8.
-- The decoder is strict: no comments, trailing commas, single quotes,
-- leading zeros, bare control characters or duplicate keys; every error
-- names the byte position.  Nesting deeper than MAX_DEPTH is an error both
-- ways, so neither a cycle nor hostile input can exhaust the stack.
local json = {}

local MAX_DEPTH = 256

--- The value null decodes to.
json.null = setmetatable({}, {__tostring = function() return "json.null" end,
                              __newindex = function() error("json.null is read-only", 2) end})

local ARRAY = {__name = "json.array"}

--- Mark t (default: a new table) as an array, so that encode writes it
-- as [] even when it is empty.  Returns t.
function json.array(t)
  t = t or {}
  if type(t) ~= "table" or getmetatable(t) ~= nil then
    error("json.array: expected a table without a metatable, got " .. type(t), 2)
  end
  return setmetatable(t, ARRAY)
end

-- {======================================================================
-- Encoding
-- =======================================================================

local ESCAPES = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                 ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t"}

local function encode_fail(path, msg)
  error(("json.encode: %s (at %s)"):format(msg, path), 0)
end

local function encode_string(s, path)
  if not utf8.len(s) then encode_fail(path, "string is not valid UTF-8") end
  return '"' .. s:gsub('[%c"\\]', function(c)
    -- DEL (127) is a control character to %c but needs no escape in JSON
    if c == "\127" then return c end
    return ESCAPES[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function encode_number(v, path)
  if math.type(v) == "integer" then return ("%d"):format(v) end
  if v ~= v then encode_fail(path, "NaN has no JSON form") end
  if v == math.huge or v == -math.huge then
    encode_fail(path, (v > 0 and "inf" or "-inf") .. " has no JSON form")
  end
  local s
  for _, fmt in ipairs{"%.15g", "%.16g", "%.17g"} do
    s = fmt:format(v)
    if tonumber(s) == v then break end
  end
  -- a locale with a decimal comma would write "0,5"; JSON needs a point
  s = s:gsub(",", ".")
  if not s:find("[.eE]") then s = s .. ".0" end   -- keep it a float
  return s
end

--- "array", "object" or raises: how to write the table t.
local function table_kind(t, path)
  local mt = getmetatable(t)
  if mt == ARRAY then return "array" end
  if mt ~= nil then encode_fail(path, "cannot encode a table with a metatable") end
  local n, strings, ints = 0, false, false
  for k in pairs(t) do
    n = n + 1
    if type(k) == "string" then strings = true
    elseif math.type(k) == "integer" and k >= 1 then ints = true
    else encode_fail(path, ("cannot encode a table with a %s key (%s)")
                           :format(math.type(k) or type(k), tostring(k))) end
  end
  if strings and ints then encode_fail(path, "table mixes string and integer keys") end
  if ints and #t ~= n then
    encode_fail(path, "array has holes (put json.null in them)")
  end
  return ints and "array" or "object"
end

local encode_value

local function encode_table(t, path, depth, out)
  if depth > MAX_DEPTH then
    encode_fail(path, ("nesting deeper than %d (a cycle?)"):format(MAX_DEPTH))
  end
  if table_kind(t, path) == "array" then
    out[#out + 1] = "["
    for i = 1, #t do
      if i > 1 then out[#out + 1] = "," end
      encode_value(t[i], path .. "[" .. i .. "]", depth + 1, out)
    end
    out[#out + 1] = "]"
    return
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  out[#out + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = encode_string(k, path)
    out[#out + 1] = ":"
    encode_value(t[k], path .. "." .. k, depth + 1, out)
  end
  out[#out + 1] = "}"
end

encode_value = function(v, path, depth, out)
  local tv = type(v)
  if v == json.null then out[#out + 1] = "null"
  elseif tv == "string" then out[#out + 1] = encode_string(v, path)
  elseif tv == "number" then out[#out + 1] = encode_number(v, path)
  elseif tv == "boolean" then out[#out + 1] = tostring(v)
  elseif tv == "table" then encode_table(v, path, depth, out)
  else encode_fail(path, "cannot encode a " .. tv) end
end

--- The JSON text of v (a string, number, boolean, json.null or a table of
-- those).  Raises "json.encode: ... (at $.path)" for anything else.
function json.encode(v)
  local out = {}
  encode_value(v, "$", 1, out)
  return table.concat(out)
end

-- }======================================================================

-- {======================================================================
-- Decoding
-- =======================================================================

local function decode_fail(s, pos, msg)
  local near = pos <= #s and (" near '%s'"):format(s:sub(pos, pos + 9):gsub("[%c]", "?"))
               or " at the end of the text"
  error(("json.decode: %s at position %d%s"):format(msg, pos, near), 0)
end

local function skip_space(s, pos)
  return s:find("[^ \t\n\r]", pos) or #s + 1
end

local UNESCAPE = {['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f",
                  n = "\n", r = "\r", t = "\t"}

--- The code point of the \uXXXX escape whose backslash is at pos (a
-- surrogate pair takes two escapes); returns it and the position after.
local function decode_escape_u(s, pos)
  local hex = s:match("^%x%x%x%x", pos + 2)
  if not hex then decode_fail(s, pos, "expected 4 hex digits after \\u") end
  local cp = tonumber(hex, 16)
  if cp >= 0xDC00 and cp <= 0xDFFF then decode_fail(s, pos, "lone low surrogate") end
  if cp >= 0xD800 and cp <= 0xDBFF then
    local lo = s:match("^\\u(%x%x%x%x)", pos + 6)
    lo = lo and tonumber(lo, 16)
    if not lo or lo < 0xDC00 or lo > 0xDFFF then
      decode_fail(s, pos, "high surrogate without a low surrogate after it")
    end
    return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00), pos + 12
  end
  return cp, pos + 6
end

--- The string whose opening quote is at pos; returns it and the position
-- after the closing quote.
local function decode_string(s, pos)
  local parts, i = {}, pos + 1
  while true do
    local j = s:find('["\\\0-\31]', i)
    if not j then decode_fail(s, pos, "unterminated string") end
    parts[#parts + 1] = s:sub(i, j - 1)
    local c = s:sub(j, j)
    if c == '"' then return table.concat(parts), j + 1 end
    if c ~= "\\" then decode_fail(s, j, "control character in a string (escape it)") end
    local e = s:sub(j + 1, j + 1)
    if UNESCAPE[e] then
      parts[#parts + 1], i = UNESCAPE[e], j + 2
    elseif e == "u" then
      local cp
      cp, i = decode_escape_u(s, j)
      parts[#parts + 1] = utf8.char(cp)
    else
      decode_fail(s, j, "invalid escape")
    end
  end
end

--- The number at pos, following JSON's grammar exactly.
local function decode_number(s, pos)
  local int = s:match("^-?%d+", pos)
  if not int then decode_fail(s, pos, "expected a value") end
  if int:find("^-?0%d") then decode_fail(s, pos, "number with a leading zero") end
  local i = pos + #int
  local frac = s:match("^%.%d*", i)
  if frac then
    if #frac == 1 then decode_fail(s, i, "expected a digit after '.'") end
    i = i + #frac
  end
  local exp = s:match("^[eE][-+]?%d*", i)
  if exp then
    if not exp:find("%d") then decode_fail(s, i, "expected a digit in the exponent") end
    i = i + #exp
  end
  local v = tonumber(s:sub(pos, i - 1))
  if (frac or exp) and math.type(v) == "integer" then v = v + 0.0 end
  return v, i
end

local decode_value

local function decode_array(s, pos, depth)
  local t, n = {}, 0
  pos = skip_space(s, pos + 1)
  if s:sub(pos, pos) == "]" then return t, pos + 1 end
  while true do
    local v
    v, pos = decode_value(s, pos, depth + 1)
    n = n + 1
    t[n] = v
    pos = skip_space(s, pos)
    local c = s:sub(pos, pos)
    if c == "]" then return t, pos + 1 end
    if c ~= "," then decode_fail(s, pos, "expected ',' or ']' in an array") end
    pos = skip_space(s, pos + 1)
  end
end

local function decode_object(s, pos, depth)
  local t = {}
  pos = skip_space(s, pos + 1)
  if s:sub(pos, pos) == "}" then return t, pos + 1 end
  while true do
    if s:sub(pos, pos) ~= '"' then decode_fail(s, pos, "expected a string key") end
    local key_pos, k = pos, nil
    k, pos = decode_string(s, pos)
    if t[k] ~= nil then decode_fail(s, key_pos, ("duplicate key '%s'"):format(k)) end
    pos = skip_space(s, pos)
    if s:sub(pos, pos) ~= ":" then decode_fail(s, pos, "expected ':' after a key") end
    t[k], pos = decode_value(s, skip_space(s, pos + 1), depth + 1)
    pos = skip_space(s, pos)
    local c = s:sub(pos, pos)
    if c == "}" then return t, pos + 1 end
    if c ~= "," then decode_fail(s, pos, "expected ',' or '}' in an object") end
    pos = skip_space(s, pos + 1)
  end
end

local LITERALS = {["true"] = true, ["false"] = false, null = json.null}

decode_value = function(s, pos, depth)
  if depth > MAX_DEPTH then decode_fail(s, pos, ("nesting deeper than %d"):format(MAX_DEPTH)) end
  local c = s:sub(pos, pos)
  if c == "{" then return decode_object(s, pos, depth) end
  if c == "[" then return decode_array(s, pos, depth) end
  if c == '"' then return decode_string(s, pos) end
  local word = s:match("^%a+", pos)
  if word then
    local v = LITERALS[word]
    if v == nil then decode_fail(s, pos, "expected a value") end
    return v, pos + #word
  end
  return decode_number(s, pos)
end

--- The value of the JSON text s.  Raises "json.decode: ... at position N
-- near '...'" on anything that is not exactly one JSON value.
function json.decode(s)
  if type(s) ~= "string" then
    error("json.decode: expected a string, got " .. type(s), 2)
  end
  local ok, bad = utf8.len(s)
  if not ok then decode_fail(s, bad, "invalid UTF-8") end
  local v, pos = decode_value(s, skip_space(s, 1), 1)
  pos = skip_space(s, pos)
  if pos <= #s then decode_fail(s, pos, "unexpected text after the value") end
  return v
end

-- }======================================================================

return json
