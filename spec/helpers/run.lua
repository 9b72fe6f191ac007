-- run.lua: helpers for specs that run programs (the ember executable, a
-- stock lua5.4 child, a C host) and read their output.
local M = {}

M.build = os.getenv("EMBER_BUILD") or "build"
M.ember = os.getenv("EMBER_BIN") or "./ember"
M.lua = os.getenv("EMBER_LUA") or "lua5.4"

--- Quote a string for sh.
function M.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- Run a shell command; returns its combined output and exit code.
function M.sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"__rc=$?\""))
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("__rc=(%d+)%s*$"))
  return out:gsub("__rc=%d+%s*$", ""), rc
end

--- The command that runs a stock lua5.4 able to require "ember".
function M.lua_cmd()
  local setup = ("package.path='lua/?.lua;lua/?/init.lua;'..package.path;" ..
                 "package.cpath='%s/?.so;'..package.cpath"):format(M.build)
  return M.lua .. " -e " .. M.q(setup)
end

--- Run Lua source in a fresh stock lua5.4 with ember on its paths.
function M.lua_run(src)
  return M.sh(M.lua_cmd() .. " -e " .. M.q(src))
end

--- Drive the ember REPL on a pseudo-terminal (util-linux's script):
-- `keys` is what is typed (real "\n", "\t", "\4" characters), or
-- {sh = cmd} for a shell command that types them (with pauses).
-- opts.history is EMBER_HISTORY (default "": no history file).  Returns
-- the terminal's output and the exit code; nil after a visible pending()
-- when there is no script to give the REPL a terminal.
function M.pty(keys, opts)
  if select(2, M.sh("command -v script")) ~= 0 then
    pending("util-linux 'script' is not installed: no pseudo-terminal to drive the REPL")
    return nil
  end
  local feed, path = type(keys) == "table" and keys.sh, nil
  if not feed then
    path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(keys)
    f:close()
    feed = "cat " .. M.q(path)
  end
  local out, rc = M.sh(("%s | EMBER_HISTORY=%s TERM=dumb timeout 60 script -qec %s /dev/null")
    :format(feed, M.q(opts and opts.history or ""), M.q(M.ember)))
  if path then os.remove(path) end
  return out, rc
end

--- The whole of the file at path, as bytes (raises when it cannot be read).
function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

--- Make s the whole of the file at path (raises when it cannot be written).
function M.write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

--- A new empty folder under /tmp; remove it with M.rmdir.
function M.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. M.q(d)))
  return d
end

--- Remove a folder made by M.tmpdir, with everything in it.
function M.rmdir(d) os.execute("rm -rf " .. M.q(d)) end

--- mpirun, when it is installed: the command that starts np copies of
-- `cmd` on this machine (more processes than cores allowed; as root,
-- allowed too), under `timeout` so that a hang fails rather than blocks.
-- nil and the reason when there is no mpirun.
function M.mpirun(np, cmd, seconds)
  local found = io.popen("command -v mpirun 2>/dev/null"):read("l")
  if not found or found == "" then
    return nil, "mpirun is not installed (make test installs openmpi-bin)"
  end
  local root = io.popen("id -u"):read("l") == "0"
  return ("timeout %d mpirun %s--oversubscribe -np %d %s"):format(seconds or 120,
    root and "--allow-run-as-root " or "", np, cmd)
end

--- nvcc's path as the Makefile finds it, or nil when there is none.
function M.nvcc()
  local out, rc = M.sh("make --no-print-directory -s print-nvcc")
  if rc ~= 0 then return nil end
  out = out:gsub("%s+$", "")
  return out ~= "" and out or nil
end

--- Build the host program <build>/<name> (a tools/*.cu test) and return
-- the command that runs it.  Both go without the sanitizer runtime that
-- `make asan` preloads: nvcc crashes under it.
function M.host_tool(name)
  local out, rc = M.sh("env -u LD_PRELOAD make --no-print-directory BUILD=" .. M.build ..
                       " " .. M.build .. "/" .. name)
  assert(rc == 0, out)
  return "env -u LD_PRELOAD " .. M.build .. "/" .. name
end

return M
