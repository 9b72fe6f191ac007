-- data.csv: tabular data from CSV files the spec writes (quotes, CRLF,
-- blank lines, targets by name and index, class names), and the errors.
local ember = require "ember"
local run = require "helpers.run"
local data = ember.data

local dir

local function write(name, text)
  local p = dir .. "/" .. name
  run.write_file(p, text)
  return p
end

local function message(fn, ...)
  local ok, msg = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return (msg:gsub("^[^:]*:%d+: ", ""))   -- the caller's position: ours
end

setup(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
end)

teardown(function()
  os.execute("rm -rf '" .. dir .. "'")
end)

describe("data.csv", function()
  it("reads features and a numeric target by name (int64 when all integers)", function()
    local p = write("num.csv", "a,b,y\n1,2.5,0\n3,-4,1\n5,6e1,2\n")
    local x, y, classes = data.csv(p, {target = "y"})
    assert.are.equal("float32", x.dtype)
    assert.are.same({3, 2}, x:shape())
    assert.are.same({{1, 2.5}, {3, -4}, {5, 60}}, x:totable())
    assert.are.equal("int64", y.dtype)
    assert.are.same({0, 1, 2}, y:totable())
    assert.is_nil(classes)
  end)

  it("gives a float target in dtype when a value has a fraction", function()
    local p = write("flt.csv", "a,y\n1,0.5\n2,1\n")
    local x, y = data.csv(p, {target = 2, dtype = "float64"})
    assert.are.equal("float64", x.dtype)
    assert.are.equal("float64", y.dtype)
    assert.are.same({0.5, 1}, y:totable())
  end)

  it("maps labels that are not numbers to 1..C in sorted order", function()
    local p = write("cls.csv", "label,f\nzebra,1\ncat,2\ndog,3\ncat,4\n")
    local x, y, classes = data.csv(p, {target = "label"})
    assert.are.same({"cat", "dog", "zebra"}, classes)
    assert.are.equal("int64", y.dtype)
    assert.are.same({3, 1, 2, 1}, y:totable())
    assert.are.same({{1}, {2}, {3}, {4}}, x:totable())
  end)

  it("honours RFC 4180 quotes, CRLF, a byte order mark and blank lines", function()
    local p = write("q.csv", '\239\187\191"x,1",y,"say ""hi"""\r\n' ..
                             '"1","2","a,b"\r\n' ..
                             '3,4,"two\r\nlines"\r\n' ..
                             '5,6,"q""q"\r\n\r\n\n')
    local x, y, classes = data.csv(p, {target = -1})
    assert.are.same({{1, 2}, {3, 4}, {5, 6}}, x:totable())
    assert.are.same({"a,b", 'q"q', "two\r\nlines"}, classes)
    assert.are.same({1, 3, 2}, y:totable())
    -- the header's quoted names can be chosen by name
    local x2 = data.csv(p, {columns = {"y", "x,1"}, target = 'say "hi"'})
    assert.are.same({{2, 1}, {4, 3}, {6, 5}}, x2:totable())
  end)

  it("keeps the chosen columns in the order given; no target gives x alone", function()
    local p = write("cols.csv", "a,b,c,d\n1,2,3,4\n5,6,7,8\n")
    local x, y = data.csv(p, {columns = {3, "a"}, target = "d"})
    assert.are.same({{3, 1}, {7, 5}}, x:totable())
    assert.are.same({4, 8}, y:totable())
    local all, none = data.csv(p)
    assert.are.same({{1, 2, 3, 4}, {5, 6, 7, 8}}, all:totable())
    assert.is_nil(none)
  end)

  it("reads files without a header, another separator, NaN and infinities", function()
    local p = write("tab.tsv", "1\tnan\t1\n-inf\t2\t0\n")
    local x, y = data.csv(p, {header = false, sep = "\t", target = 3})
    local t = x:totable()
    assert.are.equal(1, t[1][1])
    assert.is_true(t[1][2] ~= t[1][2])
    assert.are.equal(-math.huge, t[2][1])
    assert.are.same({1, 0}, y:totable())
  end)

  it("gives empty tensors for a header without rows", function()
    local x, y = data.csv(write("h.csv", "a,b,y\n"), {target = "y"})
    assert.are.same({0, 2}, x:shape())
    assert.are.same({0}, y:shape())
  end)

  it("refuses bad files with the line and the column", function()
    local p = write("bad.csv", "a,b,y\n1,2,0\n1,oops,1\n")
    assert.are.equal(("csv: '%s' line 3, column 2 ('b'): \"oops\" is not a number"):format(p),
                     message(data.csv, p, {target = "y"}))
    p = write("hex.csv", "a\n0x10\n")
    assert.truthy(message(data.csv, p):find("line 2, column 1 ('a'): \"0x10\" is not a number", 1, true))
    p = write("ragged.csv", "a,b,y\n1,2,0\n\n1,2\n")
    assert.are.equal(("csv: '%s' line 4 has 2 fields, the header has 3"):format(p),
                     message(data.csv, p, {target = "y"}))
    p = write("ragged2.csv", "1,2\n1,2,3\n")
    assert.truthy(message(data.csv, p, {header = false}):find("line 2 has 3 fields, the first line has 2", 1, true))
    p = write("open.csv", 'a,b\n1,"2\n')
    assert.truthy(message(data.csv, p):find("line 2, column 2: a quoted field is not closed", 1, true))
    p = write("after.csv", 'a,b\n1,"2"x\n')
    assert.truthy(message(data.csv, p):find('line 2, column 2: unexpected "x" after the closing quote', 1, true))
    p = write("empty.csv", "")
    assert.are.equal(("csv: '%s' is empty"):format(p), message(data.csv, p))
    p = write("blank.csv", "\r\n\n")
    assert.are.equal(("csv: '%s' is empty"):format(p), message(data.csv, p))
    p = write("emptyy.csv", "a,y\n1,\n")
    assert.truthy(message(data.csv, p, {target = "y"}):find("line 2, column 2 ('y'): the target is empty", 1, true))
    assert.truthy(message(data.csv, dir .. "/none.csv"):find("cannot be opened: No such file or directory", 1, true))
    assert.truthy(message(data.csv, dir):find("cannot be read", 1, true))
  end)

  it("refuses bad options, naming the function and the caller's line", function()
    local p = write("ok.csv", "a,b\n1,2\n")
    assert.are.equal(("csv: '%s' target column 'label' is not in the header (columns: a, b)"):format(p),
                     message(data.csv, p, {target = "label"}))
    assert.truthy(message(data.csv, p, {header = false, target = "a"}):find("given by name, but header = false", 1, true))
    assert.truthy(message(data.csv, p, {target = 3}):find("target column 3 is out of range (the file has 2 columns)", 1, true))
    assert.truthy(message(data.csv, p, {target = "a", columns = {"a"}}):find("feature column a is also the target", 1, true))
    assert.truthy(message(data.csv, p, {columns = {}}):find("csv: columns is empty", 1, true))
    assert.truthy(message(data.csv, p, {columns = "a"}):find("csv: columns must be a list", 1, true))
    assert.truthy(message(data.csv, p, {dtype = "int32"}):find("csv: dtype must be 'float32' or 'float64'", 1, true))
    assert.truthy(message(data.csv, p, {sep = ",,"}):find("csv: sep must be one character", 1, true))
    assert.truthy(message(data.csv, p, {header = 1}):find("csv: header must be a boolean", 1, true))
    assert.truthy(message(data.csv, p, {lable = "a"}):find("csv: unknown option 'lable'", 1, true))
    assert.truthy(message(data.csv, 3):find("csv: path must be a string, got", 1, true))
    local ok, msg = pcall(function() return data.csv(p, {target = "zz"}) end)
    assert.is_false(ok)
    assert.truthy(msg:find("csv_spec.lua:%d+: csv:"), msg)
  end)

  -- its speed is measured in bench/csv_bench.lua (make bench BENCH_ONLY=loader)
  it("loads 100k rows of 10 columns", function()
    local lines = {"c1,c2,c3,c4,c5,c6,c7,c8,c9,label"}
    local row = "0.125,1.5,2.25,3,4.75,5.5,6.125,7,8.5,"
    for i = 1, 100000 do lines[#lines + 1] = row .. (i % 10) end
    local p = write("big.csv", table.concat(lines, "\n") .. "\n")
    local x, y = data.csv(p, {target = "label"})
    assert.are.same({100000, 9}, x:shape())
    assert.are.equal(9, y:max():item())
    assert.are.equal(8.5, x[100000][9])
    assert.are.equal(4, y[4])
  end)
end)
