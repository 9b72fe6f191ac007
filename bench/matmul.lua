--- bench/matmul.lua -- Ember's float32 matmul, the same cases and timing
-- method as its peer bench/matmul_c.c (OpenBLAS called directly from C).
--
-- Each argument is a case (default 256 512 1024 2048):
--   n            a, b = ember.randn(n, n): a:matmul(b);
--   MxNxK[:XY]   a [M,K], b [K,N]; X and Y (N or T, default NN) say whether
--                a and b are transposed views (a = randn(K, M):transpose(1, 2)),
--                which Ember's matmul hands to BLAS as transposed operands,
--                as the convolution's GEMMs have them (see bench/run.sh).
-- Timed with bench/timing.lua's method; 2 M N K flops a call.
-- Each call allocates its result, as a user's a:matmul(b) does; the peer
-- writes into one buffer, so the allocation is part of what is measured.
-- Output: a comment line "# threads <n>", then one line per case:
-- "<the argument as given> <GFLOP/s>".
local ember = require "ember"
local timing = dofile((arg and arg[0] or "bench/matmul.lua"):gsub("[^/]*$", "") .. "timing.lua")

local MAX_DIM, MAX_ELEMS = 1 << 20, 1 << 28   -- as in matmul_c.c

--- M, N, K, ta, tb of a case, or an error naming it.
local function parse(s)
  local function bad()
    error(("matmul.lua: bad case '%s': expected n or MxNxK[:NN|NT|TN|TT], dimensions 1..%d")
          :format(s, MAX_DIM), 0)
  end
  local function dim(d)
    local v = math.tointeger(tonumber(d))
    if not v or v < 1 or v > MAX_DIM then bad() end
    return v
  end
  s = tostring(s)
  if s:match("^%d+$") then
    local n = dim(s)
    return n, n, n, false, false
  end
  local m, n, k, t = s:match("^(%d+)x(%d+)x(%d+)(.*)$")
  if not m or not (t == "" or t:match("^:[NT][NT]$")) then bad() end
  m, n, k = dim(m), dim(n), dim(k)
  if m * k > MAX_ELEMS or k * n > MAX_ELEMS or m * n > MAX_ELEMS then bad() end
  return m, n, k, t:sub(2, 2) == "T", t:sub(3, 3) == "T"
end

io.write(string.format("# threads %d\n", ember.get_num_threads()))
local cases = {...}
if #cases == 0 then cases = {"256", "512", "1024", "2048"} end
ember.manual_seed(42)
for _, s in ipairs(cases) do
  local m, n, k, ta, tb = parse(s)
  local a = ta and ember.randn(k, m):transpose(1, 2) or ember.randn(m, k)
  local b = tb and ember.randn(n, k):transpose(1, 2) or ember.randn(k, n)
  local t = timing.per_call(function(reps)
    for _ = 1, reps do a:matmul(b) end
  end, 1)
  io.write(string.format("%s %.1f\n", s, 2 * m * n * k / t * 1e-9))
  io.stdout:flush()
end
