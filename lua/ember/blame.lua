--- ember.blame: errors that point at the user's line.
--
-- A check deep inside the library should report the position of the
-- user's call, not its own.  blame.failer(...) returns fail(msg), which
-- raises msg at the first frame on the stack whose chunk is none of the
-- library files named (plain substrings of the chunk name, e.g.
-- "ember/optim/"), skipping C frames.
local blame = {}

function blame.failer(...)
  -- ember.check raises through the failer it is given: its frames are
  -- never the user's either
  local files = {"ember/check.lua", ...}
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

return blame
