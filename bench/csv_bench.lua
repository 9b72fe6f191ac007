--- bench/csv_bench.lua -- data.csv on 100k rows of 10 columns (9 features
-- and a label), against numpy.loadtxt and Python's csv module reading the
-- same file into float arrays (/usr/bin/python3, the peer interpreter the
-- other benches use; BENCH_PY overrides it).  Median of 5 runs each.
-- Usage: ./ember bench/csv_bench.lua [ROWS]
local ember = require "ember"

local rows = tonumber(arg and arg[1]) or 100000
local path = os.tmpname()
do
  local lines = {"c1,c2,c3,c4,c5,c6,c7,c8,c9,label"}
  local row = "0.125,1.5,2.25,3,4.75,5.5,6.125,7,8.5,"
  for i = 1, rows do lines[#lines + 1] = row .. (i % 10) end
  local f = assert(io.open(path, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
end

local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

local runs = {}
for k = 1, 5 do
  local t0 = ember.clock()
  local x, y = ember.data.csv(path, {target = "label"})
  runs[k] = ember.clock() - t0
  assert(x:size(1) == rows and y:numel() == rows)
end
local ours = median(runs)
print(("csv: %d x 10, data.csv             %8.1f ms"):format(rows, ours * 1e3))

local py = os.getenv("BENCH_PY") or "/usr/bin/python3"
local script = [[
import sys, time, csv
import numpy as np
path = sys.argv[1]
def med(f):
    ts = []
    for _ in range(5):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return sorted(ts)[2]
def with_csv():
    with open(path, newline="") as fh:
        r = csv.reader(fh); next(r)
        a = np.array([[float(v) for v in row] for row in r], dtype=np.float32)
    return a
print(med(lambda: np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)))
print(med(with_csv))
]]
local spath = os.tmpname()
local sf = assert(io.open(spath, "w"))
sf:write(script)
sf:close()
local p = io.popen(("%s %s %s 2>/dev/null"):format(py, spath, path))
local out = p:read("a")
p:close()
os.remove(spath)
os.remove(path)
local loadtxt, pycsv = out:match("^(%S+)\n(%S+)")
if not loadtxt then
  print("csv: the peer (numpy under " .. py .. ") did not run")
  return
end
loadtxt, pycsv = tonumber(loadtxt), tonumber(pycsv)
print(("csv: numpy.loadtxt                  %8.1f ms  (peer/ember %.2fx)"):format(loadtxt * 1e3, loadtxt / ours))
print(("csv: python csv module + numpy      %8.1f ms  (peer/ember %.2fx)"):format(pycsv * 1e3, pycsv / ours))
