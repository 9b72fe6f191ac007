-- data.csv's C scanner (ember._csv_scan, core/io_csv.c) against the pure
-- Lua path it stands in for: random files mixing plain numeric records
-- with every case the scanner leaves to Lua (quotes, blank lines, CRLF,
-- nan/inf, hex, bad field counts, empty or bad fields) must give the same
-- tensors, classes and error messages with the scanner and without it.
local ember = require "ember"
local run = require "helpers.run"
local data = ember.data

local path

setup(function() path = os.tmpname() end)
teardown(function() os.remove(path) end)

local function write(text) run.write_file(path, text) end

--- data.csv's results (or its error message) as plain tables; with
-- lua_only, with the scanner removed as the data_csv.lua header says
local function load(opts, lua_only)
  local scan = ember._csv_scan
  if lua_only then ember._csv_scan = nil end
  local ok, x, y, classes = pcall(data.csv, path, opts)
  ember._csv_scan = scan
  if not ok then return {error = x} end
  local rows = x:totable()
  for _, row in ipairs(rows) do                  -- NaN ~= NaN: compare a mark
    for j, v in ipairs(row) do
      if v ~= v then row[j] = "nan" end
    end
  end
  local yv = y and y:totable()
  for i, v in ipairs(yv or {}) do
    if v ~= v then yv[i] = "nan" end
  end
  return {x = rows, dtype = x.dtype, y = yv, ydtype = y and y.dtype,
          classes = classes}
end

local function same(opts)
  local fast, slow = load(opts), load(opts, true)
  assert.are.same(slow, fast)
  -- -0 in the file is +0 for tonumber: same sign bits, not just equal
  if fast.x then
    for i, row in ipairs(fast.x) do
      for j, v in ipairs(row) do
        if v ~= "nan" then assert.are.equal(1 / slow.x[i][j], 1 / v) end
      end
    end
  end
  return fast
end

local NUMBERS = {"1", "-2", "+3", "0.5", ".25", "7.", "-0", "-0.0", "1e3", "2.5E-2", "-.5e+1",
                 " 4 ", "\f5", "6\r", "12345678901234567890", "9223372036854775807",
                 "-9223372036854775808", "0.1", "3.14159265358979", "1e400", "1e-400",
                 "00012", "16777217"}
-- what Lua takes and the scanner leaves to it, and what is an error
local LENIENT = {"nan", "NaN", "inf", "-Infinity", '"3"', '" 4.5 "'}
local BAD = {"0x10", "", "abc", "1e", "e5", ".", "+", "1..2", "1 2", "1_000"}

--- A random file of `rows` records of `ncol` columns, the last a class
-- name or number; a field is a lenient odd one with probability p_odd,
-- and when `bad` one random record has a fault (a bad number, an empty
-- target, a wrong field count).
local function random_file(seed, rows, ncol, sep, p_odd, bad, labels)
  local g = ember.Generator(seed)
  local function rng(n) return math.floor(ember.rand(1, {generator = g}):item() * n) + 1 end
  local function chance(p) return ember.rand(1, {generator = g}):item() < p end
  local lines = {}
  local head = {}
  for c = 1, ncol do head[c] = "c" .. c end
  lines[1] = table.concat(head, sep)
  labels = labels or {"Adelie", "Gentoo", "Chinstrap", "1", "2", '"Adelie"'}
  local bad_row = bad and rng(rows) or 0
  for i = 1, rows do
    local f = {}
    for c = 1, ncol - 1 do
      f[c] = chance(p_odd) and LENIENT[rng(#LENIENT)] or NUMBERS[rng(#NUMBERS)]
    end
    f[ncol] = labels[rng(#labels)]
    if i == bad_row then
      local kind = rng(4)
      if kind == 1 then f[#f + 1] = "9"                           -- too many fields
      elseif kind == 2 then f[#f] = nil                           -- too few
      elseif kind == 3 then f[ncol] = ""                          -- an empty target
      else f[rng(ncol)] = BAD[rng(#BAD)] end
    end
    local line = table.concat(f, sep)
    if chance(0.1) then line = line .. "\r" end
    lines[#lines + 1] = line
    if chance(0.05) then lines[#lines + 1] = chance(0.5) and "" or "\r" end
  end
  return table.concat(lines, "\n") .. (chance(0.5) and "\n" or "")
end

describe("data.csv's C scanner", function()
  it("is what the Lua path gives on plain files, targets numeric and named", function()
    write("a,b,y\n1,2.5,0\n-0,.5,1\r\n\n3, 4e1 ,2\n")
    local r = same({target = "y", dtype = "float64"})
    assert.are.same({{1, 2.5}, {0, 0.5}, {3, 40}}, r.x)
    assert.are.same({0, 1, 2}, r.y)
    write("a;b;kind\n1;2;Gentoo\n3;4;Adelie\n5;6;Gentoo")
    r = same({target = "kind", sep = ";"})
    assert.are.same({"Adelie", "Gentoo"}, r.classes)
    assert.are.same({2, 1, 2}, r.y)
    same({target = -1, columns = {2}, sep = ";"})
    same({header = false, sep = ";"})
  end)

  it("stops at what it cannot take and gives Lua the same line numbers", function()
    write('a,y\n1,A\n2,""\n3,\n')
    local r = same({target = "y"})
    assert.matches("line 3, column 2", r.error, 1, true)
    write('a,y\n1,A\n"2\n",B\n\nnan,C\n4,C\n0x1,D\n')
    r = same({target = "y"})
    assert.matches("line 8, column 1", r.error, 1, true)
    write("a,y\n1,A\n\n\n2,B,3\n")
    assert.matches("line 5 has 3 fields", same({target = "y"}).error, 1, true)
  end)

  it("matches the Lua path on random mixed files", function()
    local errors, loads = 0, 0
    for seed = 1, 60 do
      local sep = ({",", ";", "\t", "|"})[seed % 4 + 1]
      local ncol = seed % 5 + 2
      write(random_file(seed, 40 + seed, ncol, sep, seed % 3 == 0 and 0 or 0.05, seed % 2 == 0))
      for _, opts in ipairs({{target = -1, sep = sep}, {sep = sep, dtype = "float64"},
                             {target = 1, columns = {ncol}, sep = sep},
                             {target = -1, columns = {-2, 1}, sep = sep}}) do
        local r = same(opts)
        if r.error then errors = errors + 1 else loads = loads + 1 end
      end
    end
    -- both outcomes must be exercised for the comparison to mean anything
    assert.is_true(errors > 20 and loads > 20, ("errors %d, loads %d"):format(errors, loads))
  end)

  it("matches the Lua path on numeric targets (int64, float, nan) and odd columns", function()
    -- the buffer's target paths: plain integers (int64), plain floats
    -- (dtype), a nan or a quoted number in a Lua row (the general path),
    -- class names only in Lua rows; a column listed twice (no scanner)
    local sets = {{"0", "1", "2", "-0", " 7 ", "9223372036854775807"},
                  {"0", "1.5", "-0.0", "2e1", "12345678901234567890", "1e400"},
                  {"1", "2", "3", "nan", '"4"'},
                  {"1", "2", '"x"', '"y"'}}
    local loads = 0
    for seed = 1, 24 do
      local sep = ({",", ";"})[seed % 2 + 1]
      local ncol = seed % 3 + 2
      write(random_file(seed, 30 + seed, ncol, sep, seed % 3 == 0 and 0 or 0.05, seed % 4 == 0,
                        sets[seed % #sets + 1]))
      for _, opts in ipairs({{target = -1, sep = sep}, {target = -1, sep = sep, dtype = "float64"},
                             {target = -1, columns = {1, 1}, sep = sep}}) do
        if not same(opts).error then loads = loads + 1 end
      end
    end
    assert.is_true(loads > 30, ("loads %d"):format(loads))
    write("a,y\n")
    local r = same({target = "y"})
    assert.are.same({}, r.y)
    assert.are.equal("int64", r.ydtype)
  end)
end)
