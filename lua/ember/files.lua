--- ember.files: files written whole, atomically.
--
-- Every file the Lua library writes in one piece (CSVLogger's log,
-- data.write_image, history:plot) goes through write_atomic, so that a
-- failed or interrupted write never leaves a half-written file where a
-- good one was.
local files = {}

--- Write bytes to path through a temporary file beside it (same
-- directory, so the rename cannot cross file systems), renamed over path
-- once complete: a failed write leaves any old file as it was and no
-- temporary behind.  Errors go through raise(msg) (the caller's way of
-- blaming its user), worded "<fname>: cannot write '<path>': <reason>".
function files.write_atomic(fname, path, bytes, raise)
  local tmp = ("%s.tmp.%d"):format(path, math.random(1 << 30))
  local function failed(err)
    os.remove(tmp)
    err = tostring(err)
    -- io's messages start with the temporary's name, which is not the user's
    if err:sub(1, #tmp + 2) == tmp .. ": " then err = err:sub(#tmp + 3) end
    raise(("%s: cannot write '%s': %s"):format(fname, path, err))
  end
  local f, err = io.open(tmp, "wb")
  if not f then failed(err) end
  local ok, werr = f:write(bytes)
  if ok then
    ok, werr = f:close()
  else
    f:close()
  end
  if not ok then failed(werr) end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then failed(rerr) end
end

return files
