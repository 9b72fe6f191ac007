-- options.lua: the command-line options of the example scripts, parsed
-- or refused, never silently ignored.
--
--   local opt = dofile(here .. "/lib/options.lua")("name.lua", arg, {
--     ["--limit"] = {"integer"}, ["--epochs"] = {"integer", 5}, ["--bf16"] = {"flag"}})
--
-- Each option is named with its kind ("integer", "number", "string", or
-- "flag": no value, true when given) and its default.  Values come as
-- `--limit 3000` or `--limit=3000`.  The result is keyed by the names as
-- written ("--limit"), defaults filled in.  An unknown option, a missing
-- or malformed value, a value given to a flag, or any other argument
-- stops the script (exit status 2) with a message that lists the options.
--
-- A script that takes arguments besides options names them in a fourth
-- argument, in order, optional ones in brackets: {"DIR", "[prompt]"}; they
-- come back as opt[1], opt[2], ...  The second result is the function
-- that stops the script the same way, for checks of the script's own
-- (a value out of range): fail("--top-p must be in (0, 1], got %g", v).
local CONVERT = {
  integer = function(s) return math.tointeger(tonumber(s)) end,
  number = tonumber,
  string = function(s) return s end,
}

return function(script, args, known, positional)
  positional = positional or {}
  local names = {}
  for name, spec in pairs(known) do
    assert(CONVERT[spec[1]] or spec[1] == "flag", "options: bad kind " .. tostring(spec[1]))
    names[#names + 1] = spec[1] == "flag" and name or name .. " " .. spec[1]:upper()
  end
  table.sort(names)
  local usage = #positional > 0 and "arguments: " .. table.concat(positional, " ") .. "; " or ""
  usage = usage .. (#names > 0 and "options: " .. table.concat(names, ", ") or "it takes no options")
  local function fail(fmt, ...)
    -- a usage error, not a bug: the message alone, no traceback
    io.stderr:write(("%s: %s (%s)\n"):format(script, fmt:format(...), usage))
    os.exit(2)
  end
  local opt = {}
  for name, spec in pairs(known) do opt[name] = spec[2] end
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-[^=]+)=(.*)$")
    name = name or a
    local spec = known[name]
    if not spec and not a:match("^%-") and #opt < #positional then
      opt[#opt + 1] = a
    elseif not spec then
      fail(a:match("^%-") and "unknown option %s" or "unexpected argument %s", a)
    elseif spec[1] == "flag" then
      if value then fail("%s takes no value", name) end
      opt[name] = true
    else
      if not value then
        i = i + 1
        value = args[i]
        if value == nil then fail("%s needs a value", name) end
      end
      local v = CONVERT[spec[1]](value)
      if v == nil then fail("%s needs %s %s, got '%s'", name, spec[1] == "integer" and "an" or "a", spec[1], value) end
      opt[name] = v
    end
    i = i + 1
  end
  if positional[#opt + 1] and not positional[#opt + 1]:match("^%[") then
    fail("no %s given", positional[#opt + 1])
  end
  return opt, fail
end
