-- ember.help (lua/ember/help.lua) and ?x in the REPL: the entries come
-- from docs/*.md as compiled into the binding library, so every expected
-- text here is cut from the files on disk, which proves the compiled text
-- is the same.
local ember = require "ember"
local run = require "helpers.run"

local read = run.read_file

-- The entry of the heading that starts with `prefix` in docs/<file>, cut
-- from disk: up to the next heading of its level or higher (outside code
-- fences), trailing blanks dropped.
local function entry(file, prefix)
  local lines, out, level, fence = {}, nil, nil, false
  for line in (read("docs/" .. file) .. "\n"):gmatch("([^\n]*)\n") do
    lines[#lines + 1] = line
  end
  for _, line in ipairs(lines) do
    local heading = not fence and line:match("^(#+)%s")
    if line:match("^%s*```") then fence = not fence end
    if out then
      if heading and #heading <= level then break end
      out[#out + 1] = line
    elseif heading and line:sub(1, #prefix) == prefix then
      out, level = {line}, #heading
    end
  end
  assert(out, "no heading " .. prefix .. " in docs/" .. file)
  return (table.concat(out, "\n"):gsub("%s+$", ""))
end

-- what ember.help prints, as one string
local function help(...)
  local printed = {}
  local n = select("#", ...)
  local args = {...}
  args[n == 0 and 2 or n + 1] = {print_fn = function(s) printed[#printed + 1] = s end}
  ember.help(table.unpack(args, 1, math.max(n, 1) + 1))
  return table.concat(printed, "\n")
end

describe("ember.help", function()
  it("reads the docs compiled into the library, the same bytes as docs/", function()
    -- ember.core's _docs, as the library compiled it (help.lua keeps it)
    local function upvalue(fn, want, depth)
      for i = 1, math.huge do
        local name, v = debug.getupvalue(fn, i)
        if not name then return nil end
        if name == want then return v end
        local found = depth > 0 and type(v) == "function" and upvalue(v, want, depth - 1)
        if found then return found end
      end
    end
    local docs = assert(upvalue(ember.help, "compiled_docs", 2))()
    local names = {}
    local p = assert(io.popen("ls docs/*.md"))
    for path in p:lines() do
      local name = path:match("docs/(.*)$")
      names[#names + 1] = name
      assert.is_true(docs[name] == read(path), name .. " differs from the compiled copy")
    end
    p:close()
    local n = 0
    for _ in pairs(docs) do n = n + 1 end
    assert.are.equal(#names, n)
  end)

  it("prints a function's entry, from the function or its name", function()
    local want = entry("lua-api.md", "### ember.zeros(")
    assert.are.equal(want, help(ember.zeros))
    assert.are.equal(want, help("ember.zeros"))
    assert.are.equal(want, help("zeros"))
    assert.are.equal(want, help(ember.ones))   -- the same heading
    assert.truthy(want:find("```lua", 1, true), "the example is part of it")
    assert.are.equal(entry("nn.md", "### nn.utils.clip_grad_norm_("),
                     help(ember.nn.utils.clip_grad_norm_))
    assert.are.equal(entry("training.md", "### ember.metrics.precision("),
                     help("ember.metrics.precision"))
    -- a bare call in a table under a section that names its module
    local functional = entry("nn.md", "## Functional forms")
    assert.are.equal(functional, help("nn.functional.relu"))
    assert.are.equal(functional, help("F.relu"))
    assert.truthy(help(ember.nn.functional.relu):find(functional, 1, true))
    -- a file's title: its introduction, not the whole file
    local intro = help(ember.nn)
    assert.truthy(intro:find("^# ember.nn: layers"), intro)
    assert.falsy(intro:find("\n## ", 1, true), intro)
  end)

  it("prints a tensor method's entry: t.sum, ember.Tensor.sum, 'Tensor:sum', 't:sum'", function()
    local t = ember.zeros(2, 3)
    local reductions = entry("lua-api.md", "## Reductions")
    assert.are.equal(reductions, help(t.sum))
    assert.are.equal(reductions, help(ember.Tensor.sum))
    assert.are.equal(reductions, help("Tensor:sum"))
    assert.are.equal(reductions, help("t:sum"))
    assert.are.equal(reductions, help("sum"))
    local view = entry("lua-api.md", "### t:view(")
    assert.are.equal(view, help(t.view))
    assert.are.equal(view, help("t:view"))
  end)

  it("prints a class's entry, from the class, an instance or a name", function()
    local linear = entry("nn.md", "### nn.Linear(")
    assert.are.equal(linear, help(ember.nn.Linear))
    assert.are.equal(linear, help(ember.nn.Linear(2, 3)))
    assert.are.equal(linear, help("nn.Linear"))
    assert.are.equal(linear, help("ember.nn.Linear"))
    local adamw = entry("optim.md", "### optim.AdamW(")
    assert.are.equal(adamw, help(ember.optim.AdamW))
    local opt = ember.optim.AdamW(ember.nn.Linear(2, 2):parameters(), {lr = 0.1})
    assert.are.equal(adamw, help(opt))
    assert.are.equal(entry("data.md", "### data.loader("), help(ember.data.loader))
    assert.are.equal(entry("nn.md", "### nn.Module"),
                     help(ember.nn.Module))
    -- a tensor: the tensor class's entry
    assert.are.equal(entry("lua-api.md", "### ember.Tensor"), help(ember.zeros(2)))
    -- a section by its title, a method by its receiver's class
    assert.are.equal(entry("training.md", "## Metrics"), help("ember.metrics"))
    assert.are.equal(entry("training.md", "## model:fit("), help("model:fit"))
  end)

  it("lists the entries of a bare name found under several", function()
    local text = help("train")
    assert.truthy(text:find("^help: several entries for 'train':"), text)
    assert.truthy(text:find("help'Module:train'", 1, true), text)
    assert.truthy(text:find("help'data.BPE.train'", 1, true), text)
    text = help("relu")
    assert.truthy(text:find("help'Tensor:relu'", 1, true), text)
    assert.truthy(text:find("help'nn.functional.relu'", 1, true), text)
  end)

  it("says so for what it has no entry for, never an error", function()
    assert.are.equal("help: no entry for 'foo'; try help() or help'topic'", help("foo"))
    assert.are.equal("help: no entry for a number; try help() or help'topic'", help(42))
    assert.are.equal("help: no entry for a table; try help() or help'topic'", help({}))
    for _, odd in ipairs({"", "t:", "ember.", "%", "(", "a.b.c:d", "math.huge"}) do
      assert.are.equal(("help: no entry for '%s'; try help() or help'topic'"):format(odd),
                       help(odd))
    end
  end)

  it("never raises for a global that a strict _G refuses", function()
    local mt = getmetatable(_G)
    setmetatable(_G, {__index = function(_, k) error("undeclared global " .. k, 2) end})
    local ok, text = pcall(help, "undeclared_thing")
    setmetatable(_G, mt)
    assert.is_true(ok, text)
    assert.are.equal("help: no entry for 'undeclared_thing'; try help() or help'topic'", text)
  end)

  it("help() lists the docs files and their sections", function()
    local text = help()
    assert.truthy(text:find("lua-api.md: Ember Lua API reference\n  Conventions\n", 1, true), text)
    for _, file in ipairs({"lua-api.md", "nn.md", "optim.md", "data.md", "training.md", "ember.md"}) do
      local src = read("docs/" .. file)
      local title = src:match("^# ([^\n]*)")
      assert.truthy(text:find("\n" .. file .. ": " .. title .. "\n", 1, true), file)
      local fence = false
      for line in src:gmatch("[^\n]*") do
        if line:match("^%s*```") then fence = not fence end
        local h2 = not fence and line:match("^## (.-)%s*$")
        if h2 then assert.truthy(text:find("\n  " .. h2 .. "\n", 1, true) or
                                 text:sub(-#h2 - 3) == "  " .. h2, h2) end
      end
    end
  end)

  it("help(ember) and help'ember' print the reference's introduction, its list of sections", function()
    -- docs/lua-api.md up to its first section, as on disk
    local intro = read("docs/lua-api.md"):match("^(.-)\n## "):gsub("%s+$", "")
    assert.truthy(intro:find("[Creation](#creation)", 1, true), intro)
    assert.are.equal(intro, help(ember))
    assert.are.equal(intro, help("ember"))
    assert.are.equal(intro, help(" ember "))
    -- the library's tables keep their own entries
    assert.are.equal(entry("nn.md", "# ember.nn"):match("^(.-)\n##"):gsub("%s+$", ""),
                     help(ember.nn))
  end)

  it("checks its options", function()
    assert.has_error(function() ember.help("zeros", {pritn_fn = print}) end,
      "help: unknown option 'pritn_fn'; did you mean 'print_fn'?")
    assert.has_error(function() ember.help("zeros", {print_fn = 1}) end,
      "help: print_fn must be a function, got number")
  end)

  it("works in the stock lua5.4, where it is no global", function()
    local out, rc = run.lua_run('local ember = require "ember"; print(help == nil); ember.help("ember.zeros")')
    assert.are.equal(0, rc, out)
    assert.are.equal("true\n" .. entry("lua-api.md", "### ember.zeros(") .. "\n", out)
  end)
end)

describe("help in the REPL", function()
  it("?x and help(x) in `ember -i`", function()
    local out, rc = run.sh(("printf '%%s\\n' 't = ember.zeros(2)' '?ember.zeros' '?  t:view ' " ..
                            "'help(ember.nn.Linear)' '?foo\"bar' 'm = ember.nn.Linear(2, 2)' '?m:forward' | %s -i")
                           :format(run.q(run.ember)))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find(entry("lua-api.md", "### ember.zeros("), 1, true), out)
    assert.truthy(out:find(entry("lua-api.md", "### t:view("), 1, true), out)
    assert.truthy(out:find(entry("nn.md", "### nn.Linear("), 1, true), out)
    assert.truthy(out:find("help: no entry for 'foo\"bar'", 1, true), out)
    local _, linears = out:gsub("### nn.Linear%(", "")
    assert.are.equal(2, linears, out)   -- help(ember.nn.Linear) and ?m:forward
  end)

  it("?ember.zeros and help() on a terminal", function()
    local out, rc = run.pty("?ember.zeros\nhelp()\n")
    if not out then return end
    assert.are.equal(0, rc, out)
    out = out:gsub("\r\n", "\n")
    assert.truthy(out:find(entry("lua-api.md", "### ember.zeros("), 1, true), out)
    assert.truthy(out:find("\nlua-api.md: Ember Lua API reference\n  Conventions\n", 1, true), out)
    assert.truthy(out:find("\nnn.md: ", 1, true), out)
  end)
end)
