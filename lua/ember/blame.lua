--- ember.blame: errors that point at the user's line.
--
-- A check deep inside the library should report the position of the
-- user's call, not its own.  blame.failer(...) returns fail(msg), which
-- raises msg at the first frame on the stack whose chunk is none of the
-- library files named (plain substrings of the chunk name, e.g.
-- "ember/optim/"), skipping C frames.
--
-- Code that runs the user's model (Sequential, fit, evaluate, predict,
-- the loss modules and nn.functional's losses, the wrapper of a forward
-- the user defines) catches what fails inside it and raises it again
-- with blame.reraise: the message loses the library position it was
-- raised at (or gets one, when a C function raised it with none) and
-- carries the position of the first frame outside the whole library.
local blame = {}

function blame.failer(...)
  -- ember.check and ember.files raise through the failer they are given:
  -- their frames are never the user's either
  local files = {"ember/check.lua", "ember/files.lua", ...}
  local function ours(source)
    for _, f in ipairs(files) do
      if source:find(f, 1, true) then return true end
    end
    return false
  end
  return function(msg)
    local level = 2
    while true do
      local info = debug.getinfo(level, "S")
      if not info then level = 1 break end
      if info.what ~= "C" and not ours(info.source) then break end
      level = level + 1
    end
    error(msg, level)
  end
end

-- {======================================================================
-- The whole library
-- =======================================================================

-- The directory the library's Lua files are in ("lua/ember/" when run
-- from a checkout, ".../share/lua/5.4/ember/" when installed), from this
-- file's own chunk name.
local ROOT = debug.getinfo(1, "S").source:match("^@(.*)blame%.lua$")

--- True when rel (a path under ROOT, "nn/module.lua") is the file of one
-- of the library's modules that is loaded or preloaded (an error raised
-- while the model runs comes from a loaded one).
local function library_module(rel)
  local name = rel:match("^([%w_/]+)%.lua$")
  if not name then return false end
  name = ("ember/" .. name):gsub("/init$", ""):gsub("/", ".")
  return package.loaded[name] ~= nil or package.preload[name] ~= nil
end

--- True when file (a chunk's short name, as error positions print it,
-- possibly cut to "...tail" by Lua) is one of the library's.
local function library_file(file)
  if not ROOT then return file:find("ember/", 1, true) ~= nil end
  if file:sub(1, #ROOT) == ROOT then return true end
  if file:sub(1, 3) ~= "..." then return false end
  -- a cut name: its tail must start with a tail of ROOT and go on with
  -- one of the library's modules.  A tail of ROOT alone can be as short
  -- as its last "/", which begins many a cut user path
  -- (".../home/me/train.lua"); the module's name rules those out.
  local tail = file:sub(4)
  for i = 1, #ROOT do
    local head = ROOT:sub(i)
    if tail:sub(1, #head) == head and library_module(tail:sub(#head + 1)) then
      return true
    end
  end
  return false
end
blame.library_file = library_file

--- True when source (a chunk name as debug.getinfo gives it, "@file" for
-- a file) is one of the library's files.
local function library_source(source)
  return source:sub(1, 1) == "@" and library_file(source:sub(2))
end
blame.library_source = library_source

--- The position prefix ("file:line: ") of the first Lua frame outside
-- the library, "" when there is none.
function blame.where()
  local level = 2
  while true do
    local info = debug.getinfo(level, "Sl")
    if not info then return "" end
    if info.what ~= "C" and not library_source(info.source) then
      return info.currentline > 0 and ("%s:%d: "):format(info.short_src, info.currentline) or ""
    end
    level = level + 1
  end
end

--- Split a message into its position ("file:line: ", nil when it has
-- none), whether that position is the library's, and the rest.
function blame.split(msg)
  local file, line, rest = msg:match("^([^\n]-):(%d+): (.*)$")
  if not file or file:find(": ", 1, true) then return nil, false, msg end
  return ("%s:%s: "):format(file, line), library_file(file), rest
end

--- Raise e again at the user's line: a string loses its library position
-- (or gains the user's, having none); one raised in the user's own code
-- keeps its position.  prefix (optional) goes before the message itself.
-- Anything else (an error table) is raised again untouched.
function blame.reraise(e, prefix)
  if type(e) ~= "string" then error(e, 0) end
  local pos, ours, rest = blame.split(e)
  if not pos or ours then pos = blame.where() end
  error(pos .. (prefix or "") .. rest, 0)
end

-- }======================================================================

return blame
