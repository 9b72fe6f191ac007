-- Every example in the docs runs (README.md and docs/*.md).
--
-- The rules, which docs/README.md states for writers:
--   * A fenced block whose info string is exactly `lua` is a chunk that
--     must run without error.  It runs with `ember` as a global and with
--     `print` captured (nothing reaches the terminal).
--   * `print(...) --> text` on one line: what that line prints must be
--     exactly `text`.  A `-->` comment on a line that prints nothing fails,
--     so no result shown in the docs goes unchecked.
--   * A block whose info string is `output`, right after a `lua` block
--     (only blank lines between), is everything that block prints.
--   * A `c` block with a `main` function is compiled against libember.a
--     and run; an `output` block after it is what it prints.
--   * Any other info string (text, sh, ...) is not run.
-- Each block is one `it`, named by its file and the line of its fence;
-- errors inside a chunk read "docs/x.md:FENCE:LINE-IN-BLOCK: message".
--
-- The docs must also name every public function: each field of the
-- `ember` module in docs/lua-api.md, each identifier the public C headers
-- declare in docs/c-api.md.
local ember = require "ember"
local run = require "helpers.run"

-- {======================================================================
-- Reading Markdown
-- =======================================================================

local function read(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- The fenced code blocks of a Markdown file, in order: {file, line (of
-- the opening fence), info, code, after (the block just before, if only
-- blank lines separate them)}.
local function blocks(path)
  local text = read(path)
  if not text then return {} end
  local out, cur, prev, gap_blank = {}, nil, nil, false
  local n = 0
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    n = n + 1
    if cur then
      local fence = line:match("^ ? ? ?(```+)%s*$")
      if fence and #fence >= cur.fence then
        cur.code = table.concat(cur.lines, "\n")
        out[#out + 1] = cur
        prev, gap_blank, cur = cur, true, nil
      else
        cur.lines[#cur.lines + 1] = line
      end
    else
      local fence, info = line:match("^ ? ? ?(```+)%s*([^`]-)%s*$")
      if fence then
        cur = {file = path, line = n, info = info, fence = #fence, lines = {},
               after = gap_blank and prev or nil}
      elseif not line:match("^%s*$") then
        gap_blank = false
      end
    end
  end
  return out
end

--- README.md (if there is one) and docs/*.md, in a stable order.
local function doc_files()
  local files = {}
  if read("README.md") then files[1] = "README.md" end
  local p = io.popen("ls docs/*.md 2>/dev/null")
  for path in p:lines() do files[#files + 1] = path end
  p:close()
  return files
end

-- GitHub's anchors of a Markdown file: its headings' slugs (the text as
-- rendered, lowercased, every character but letters, digits, spaces, -
-- and _ dropped, each space a -; a repeated slug gets -1, -2, ...) and any
-- <a name="..."> or id="...".  Headings inside fenced blocks are code.
local anchors_cache = {}
local function anchors(path)
  if anchors_cache[path] then return anchors_cache[path] end
  local text = read(path)
  if not text then return nil end
  local set, seen, fence = {}, {}, nil
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    local f = line:match("^ ? ? ?(```+)")
    if f and (not fence or #f >= fence) then
      fence = not fence and #f or nil
    elseif not fence then
      local h = line:match("^ ? ? ?#+%s+(.-)%s*#*%s*$")
      if h then
        local slug = h:gsub("!?%[(.-)%]%b()", "%1")     -- a link: its text
                      :gsub("<[^>]*>", "")               -- inline HTML
                      :gsub("\xE2\x80[\x90-\x9F]", "")     -- dashes, quotes
                      :lower():gsub("[^%w%s%-_\x80-\xFF]", ""):gsub("%s", "-")
        local k = seen[slug]
        seen[slug] = (k or -1) + 1
        set[k and ("%s-%d"):format(slug, k + 1) or slug] = true
      end
      for _, attr in ipairs({"name", "id"}) do
        for id in line:gmatch("<%a[^>]-%s" .. attr .. "=\"([^\"]+)\"") do set[id] = true end
      end
    end
  end
  anchors_cache[path] = set
  return set
end

--- The links of a Markdown file to other files of the repository or to
-- anchors ([text](target) outside code), as {line, target}.
local function local_links(path)
  local out, fence, n = {}, nil, 0
  for line in (read(path) .. "\n"):gmatch("(.-)\r?\n") do
    n = n + 1
    local f = line:match("^ ? ? ?(```+)")
    if f and (not fence or #f >= fence) then
      fence = not fence and #f or nil
    elseif not fence then
      local prose = line:gsub("(`+).-%1", "")          -- inline code is not a link
      for target in prose:gmatch("%]%(([^%s%)]+)[^%)]*%)") do
        if not target:match("^%a[%w+.-]*:") then        -- http:, mailto:, ...
          out[#out + 1] = {line = n, target = target}
        end
      end
    end
  end
  return out
end

-- }======================================================================

-- {======================================================================
-- Running a lua block
-- =======================================================================

-- Print options and the thread count are process-wide: put them back after
-- every block so that blocks cannot change one another's output.
local PRINT_DEFAULTS = {threshold = 1000, edgeitems = 3, precision = 4, linewidth = 80}
local THREADS = ember.get_num_threads()

local function restore()
  ember.set_printoptions(PRINT_DEFAULTS)
  ember.set_num_threads(THREADS)
end

--- Run a lua block; returns nil on success or an error message.  Fills
-- b.printed with everything it printed.
local function run_lua(b)
  local chunkname = ("@%s:%d"):format(b.file, b.line)
  local printed, by_line = {}, {}
  local env = setmetatable({}, {__index = _G})
  env.ember = ember
  env.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    local s = table.concat(parts, "\t")
    printed[#printed + 1] = s
    local info = debug.getinfo(2, "Sl")
    if info and info.source == chunkname then
      local l = info.currentline
      by_line[l] = by_line[l] and (by_line[l] .. "\n" .. s) or s
    end
  end
  b.printed = printed
  local fn, err = load(b.code, chunkname, "t", env)
  if not fn then return err end
  local ok, msg = xpcall(fn, function(e)
    -- the traceback down to the chunk, without busted's frames
    local tb = debug.traceback(tostring(e), 2)
    return (tb:gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
  end)
  restore()
  if not ok then return msg end
  -- `print(...) --> expected` lines
  local i = 0
  for line in (b.code .. "\n"):gmatch("(.-)\n") do
    i = i + 1
    local want = line:match("%-%->%s?(.-)%s*$")
    if want then
      local got = by_line[i]
      if got == nil then
        return ("%s:%d: line %d has a '-->' comment but printed nothing")
               :format(b.file, b.line + i, i)
      end
      if got ~= want then
        return ("%s:%d: line %d printed\n  %s\nbut its '-->' comment says\n  %s")
               :format(b.file, b.line + i, i, got, want)
      end
    end
  end
  return nil
end

--- Compare what a block printed with the `output` block after it.
local function check_output(b, out)
  if not out then return nil end
  local got = table.concat(b.printed, "\n"):gsub("%s+$", "")
  local want = out.code:gsub("%s+$", "")
  if got ~= want then
    return ("%s:%d: the output block says\n%s\n\nbut the example printed\n%s")
           :format(out.file, out.line, want, got)
  end
  return nil
end

-- }======================================================================

-- {======================================================================
-- Compiling and running a c block
-- =======================================================================

local LUA_INC = os.getenv("LUA_INC") or "/usr/include/lua5.4"
local LIBEMBER = run.build .. "/libember.a"

local function run_c(b)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. run.q(dir)))
  local src, exe = dir .. "/example.c", dir .. "/example"
  local f = assert(io.open(src, "w"))
  f:write(("#line %d %q\n"):format(b.line + 1, b.file), b.code, "\n")
  f:close()
  local san = os.getenv("EMBER_SAN") or ""
  local out, rc = run.sh(("cc -std=c11 -Wall -Wextra %s -Icore/include -Ibindings -I%s " ..
                          "-o %s %s %s -llua5.4 -lopenblas -lpng -ljpeg -lz -lm -fopenmp")
                         :format(san, run.q(LUA_INC), run.q(exe), run.q(src),
                                 run.q(LIBEMBER)))
  if rc ~= 0 then
    os.execute("rm -rf " .. run.q(dir))
    return "does not compile:\n" .. out
  end
  out, rc = run.sh(run.q(exe))
  os.execute("rm -rf " .. run.q(dir))
  b.printed = {(out:gsub("%s+$", ""))}
  if rc ~= 0 then return ("exits with %d:\n%s"):format(rc, out) end
  return nil
end

-- }======================================================================

local function has_libember()
  return read(LIBEMBER) ~= nil
end

describe("docs", function()
  local files = doc_files()
  local nlua = 0

  for _, path in ipairs(files) do
    local bs = blocks(path)
    -- the output block (if any) that belongs to each runnable block
    local output_of = {}
    for _, b in ipairs(bs) do
      if b.info == "output" then
        local prev = b.after
        if prev and (prev.info == "lua" or prev.info == "c") then
          output_of[prev] = b
        else
          it(("%s:%d (output block)"):format(path, b.line), function()
            error(("%s:%d: an output block must follow a lua or c block " ..
                   "(only blank lines between)"):format(path, b.line), 0)
          end)
        end
      end
    end
    for _, b in ipairs(bs) do
      if b.info == "lua" then
        nlua = nlua + 1
        it(("%s:%d"):format(path, b.line), function()
          local err = run_lua(b) or check_output(b, output_of[b])
          if err then error(err, 0) end
        end)
      elseif b.info == "c" and b.code:find("int%s+main%s*%(") then
        it(("%s:%d (C, compiled and run)"):format(path, b.line), function()
          if not has_libember() then
            pending("needs " .. LIBEMBER .. " (make " .. LIBEMBER .. ")")
            return
          end
          local err = run_c(b) or check_output(b, output_of[b])
          if err then error(err, 0) end
        end)
      end
    end
  end

  it("have no broken links between them, anchors included (GitHub's slugs)", function()
    local broken = {}
    for _, path in ipairs(files) do
      local dir = path:match("^(.*)/") or "."
      for _, l in ipairs(local_links(path)) do
        local file, anchor = l.target:match("^([^#]*)#?(.*)$")
        local target = file == "" and path or (dir .. "/" .. file):gsub("^%./", "")
        local why
        if not read(target) and not os.rename(target, target) then
          why = "no such file"
        elseif anchor ~= "" and target:match("%.md$") and not anchors(target)[anchor] then
          why = "no heading or anchor #" .. anchor .. " in " .. target
        end
        if why then broken[#broken + 1] = ("%s:%d: (%s): %s"):format(path, l.line, l.target, why) end
      end
    end
    assert.are.same({}, broken)
  end)

  it("have lua examples to run", function()
    assert.is_true(nlua > 0, "no ```lua blocks found in README.md or docs/*.md")
  end)

  -- {====================================================================
  -- Kept in step with the code: every public name is documented
  -- =====================================================================

  it("docs/lua-api.md names every function of the ember module", function()
    local doc = assert(read("docs/lua-api.md"), "docs/lua-api.md is missing")
    local missing = {}
    local function documented(name)
      local plain = name:gsub("%p", "%%%0")
      return doc:find("[%.:]" .. plain .. "[%(%s`{]") ~= nil
    end
    for name, v in pairs(ember) do
      if not name:match("^_") then
        if type(v) == "function" and not documented(name) then
          missing[#missing + 1] = name
        elseif type(v) == "table" and name ~= "Tensor" then
          for k, f in pairs(v) do
            if type(f) == "function" and not documented(name .. "." .. k) then
              missing[#missing + 1] = name .. "." .. k
            end
          end
        end
      end
    end
    table.sort(missing)
    assert.are.same({}, missing, "undocumented in docs/lua-api.md: " ..
                    table.concat(missing, ", "))
  end)

  it("docs/c-api.md names every identifier of the public C headers", function()
    local doc = assert(read("docs/c-api.md"), "docs/c-api.md is missing")
    local missing, seen = {}, {}
    for _, h in ipairs{"core/include/ember.h", "bindings/ember_lua.h"} do
      local src = assert(read(h), h)
      src = src:gsub("/%*.-%*/", " "):gsub("//[^\n]*", " ")
               :gsub("#%s*include[^\n]*", " ")
               :gsub("#%s*ifndef%s+[%w_]+_H%f[^%w_]", " ")
               :gsub("#%s*define%s+[%w_]+_H%f[^%w_]", " ")
      for id in src:gmatch("[%a_][%w_]*") do
        if (id:match("^ember_") or id:match("^EMBER_") or id:match("^luaopen_"))
           and not seen[id] then
          seen[id] = true
          if not doc:find("%f[%w_]" .. id .. "%f[^%w_]") then
            missing[#missing + 1] = id
          end
        end
      end
    end
    assert.are.same({}, missing, "undocumented in docs/c-api.md: " ..
                    table.concat(missing, ", "))
  end)

  -- }====================================================================
end)
