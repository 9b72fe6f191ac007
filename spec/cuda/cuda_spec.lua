-- ember.cuda: availability, the device functions, moving tensors between
-- the devices, and the CUDA plugin's build.  This file runs everywhere and
-- asserts either way:
--   * without a GPU (CI, the development machine): is_available() is false
--     with a reason, device_count() 0, the memory functions 0, and every
--     way onto the device (t:cuda(), model:cuda(), {device = "cuda"}) an
--     error "cuda: CUDA is not available (<reason>)" while the rest works;
--   * with a GPU: device_count() >= 1 and tensors of every dtype go to the
--     device and back bit-exact;
--   * in both: the TF32 switch and the shared seed, and, when nvcc exists,
--     the plugin ($EMBER_BUILD/libember_cuda.so) is built, exports
--     ember_device_plugin_init and needs none of the core's symbols.
-- The CPU/GPU parity of every op is spec/cuda/ops_spec.lua; training on the
-- GPU is spec/cuda/training_spec.lua (both GPU only).
local ember = require "ember"
local run = require "helpers.run"
local cuda_helper = require "helpers.cuda"

local cuda = ember.cuda
local AVAILABLE = cuda.is_available()
local PLUGIN = run.build .. "/libember_cuda.so"
local NOT_AVAILABLE = "cuda: CUDA is not available"
local DTYPES = {"float32", "float64", "int32", "int64", "uint8", "bool"}

-- {======================================================================
-- Helpers
-- =======================================================================

--- The message of the error fn(...) raises, without a "file:line: "
-- position that a Lua-side error may carry (errors blame the caller's line).
local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error, but the call succeeded")
  return (tostring(err):gsub("^[^%s:]+:%d+: ", "", 1))
end

--- Assert that err says CUDA is unavailable and gives the reason;
-- `starts` asks for the message to begin with "cuda: CUDA is not available".
local function assert_unavailable(err, starts, what)
  local reason = cuda.unavailable_reason()
  if starts then
    assert.are.equal(NOT_AVAILABLE, err:sub(1, #NOT_AVAILABLE),
                     what .. ": the message should start with '" .. NOT_AVAILABLE ..
                     "', got: " .. err)
  else
    assert.is_truthy(err:find("CUDA is not available", 1, true),
                     what .. ": the message should say 'CUDA is not available', got: " .. err)
  end
  assert.is_truthy(err:find(reason, 1, true),
                   what .. ": the message should give the reason '" .. reason .. "', got: " .. err)
end

--- Does a command exist (exit status 0)?
local function succeeds(cmd)
  local _, rc = run.sh(cmd)
  return rc == 0
end

local function has_nvcc()
  return succeeds("command -v nvcc >/dev/null || test -x /usr/local/cuda/bin/nvcc")
end

--- Each element of t as a string that tells every bit of a value apart:
-- "%a" for floats (so -0.0 and 0.0 differ, and NaN reads "nan" or "-nan"),
-- tostring for integers and booleans.
local function bits(t)
  local vals = t:dim() == 0 and {t:item()} or t:reshape(-1):totable()
  local out = {}
  for i, v in ipairs(vals) do
    out[i] = math.type(v) == "float" and ("%a"):format(v) or tostring(v)
  end
  return out
end

--- A tensor of dtype with the awkward values of its kind: for floats NaN,
-- both infinities, both zeros, a denormal, the extremes; for integers the
-- limits; for uint8 all 256 values; for bool both.
local function awkward(dtype)
  local v
  if dtype == "float32" then
    v = {0.0, -0.0, 1.0, -1.5, 0 / 0, math.huge, -math.huge, 1e-45, -1e-40,
         3.4028234663852886e38, 1.1754943508222875e-38, 0.1, 1 / 3}
  elseif dtype == "float64" then
    v = {0.0, -0.0, 1.0, -1.5, 0 / 0, math.huge, -math.huge, 5e-324, -2.2e-308,
         1.7976931348623157e308, 0.1, 1 / 3, math.pi}
  elseif dtype == "int32" then
    v = {0, 1, -1, 2147483647, -2147483648, 123456789, -7}
  elseif dtype == "int64" then
    v = {0, 1, -1, math.maxinteger, math.mininteger, 1 << 53 | 1, -(1 << 40)}
  elseif dtype == "uint8" then
    v = {}
    for i = 0, 255 do v[#v + 1] = i end
  else
    v = {true, false, false, true, true}
  end
  return ember.tensor(v, {dtype = dtype})
end

-- }======================================================================

describe("ember.cuda (any machine)", function()
  it("has the device functions of the contract", function()
    for _, name in ipairs{"is_available", "unavailable_reason", "device_count",
                          "synchronize", "memory_allocated", "memory_reserved",
                          "empty_cache", "manual_seed", "set_allow_tf32",
                          "get_allow_tf32"} do
      assert.are.equal("function", type(cuda[name]), "ember.cuda." .. name)
    end
    assert.are.equal("boolean", type(AVAILABLE))
  end)

  it("switches TF32 on and off (off by default)", function()
    assert.is_false(cuda.get_allow_tf32())
    cuda.set_allow_tf32(true)
    local on = cuda.get_allow_tf32()
    cuda.set_allow_tf32(false)
    assert.is_true(on)
    assert.is_false(cuda.get_allow_tf32())
  end)

  it("seeds the one generator: ember.cuda.manual_seed is ember.manual_seed", function()
    cuda.manual_seed(1234)
    local a = ember.rand(5)
    ember.manual_seed(1234)
    local b = ember.rand(5)
    assert.is_true(a:equal(b))
    assert.are.equal(1234, ember.initial_seed())
  end)

  describe("the plugin", function()
    if not has_nvcc() then
      pending("nvcc not found: no CUDA plugin is built on this machine")
      return
    end

    it("is built when nvcc exists (" .. PLUGIN .. ")", function()
      local f = io.open(PLUGIN, "rb")
      assert.is_truthy(f, PLUGIN .. " is missing although nvcc exists (make " .. PLUGIN .. ")")
      f:close()
    end)

    if not succeeds("command -v nm >/dev/null") then
      pending("nm not found: cannot list the plugin's symbols")
      return
    end

    it("exports ember_device_plugin_init and needs no core symbol", function()
      local out, rc = run.sh("nm -D --defined-only " .. run.q(PLUGIN))
      assert.are.equal(0, rc, out)
      assert.is_truthy(out:find("%f[%w_]ember_device_plugin_init%f[^%w_]"),
                       "ember_device_plugin_init is not exported by " .. PLUGIN)
      out, rc = run.sh("nm -D --undefined-only " .. run.q(PLUGIN))
      assert.are.equal(0, rc, out)
      local core = {}
      for sym in out:gmatch("%f[%w_](ember_[%w_]*)") do core[#core + 1] = sym end
      assert.are.same({}, core, "the plugin must not use the core's symbols " ..
                      "(use the cu_* helpers of core/cuda/cuda_internal.h)")
    end)
  end)
end)

describe("ember.cuda without a GPU", function()
  if AVAILABLE then
    pending("a CUDA device is available: the no-GPU behaviour is not checked here")
    return
  end

  it("says why it is not available", function()
    local reason = cuda.unavailable_reason()
    assert.are.equal("string", type(reason))
    assert.is_true(#reason > 0)
    assert.are.equal(0, cuda.device_count())
  end)

  it("answers 0 from the memory functions; empty_cache does nothing", function()
    assert.are.equal(0, cuda.memory_allocated())
    assert.are.equal(0, cuda.memory_reserved())
    assert.are.equal("integer", math.type(cuda.memory_allocated()))
    assert.are.equal("integer", math.type(cuda.memory_reserved()))
    cuda.empty_cache()
    assert.are.equal(0, cuda.memory_reserved())
  end)

  it("refuses every way onto the device with the reason", function()
    local t = ember.ones(2, 3)
    assert_unavailable(error_of(t.cuda, t), true, "t:cuda()")
    assert_unavailable(error_of(ember.zeros, 2, {device = "cuda"}), true,
                       "ember.zeros(2, {device = 'cuda'})")
    assert_unavailable(error_of(function() return ember.nn.Linear(2, 2):cuda() end), true,
                       "model:cuda()")
    assert_unavailable(error_of(t.to, t, "cuda"), false, "t:to('cuda')")
    assert_unavailable(error_of(ember.cuda, t), false, "ember.cuda(t)")
    assert_unavailable(error_of(ember.randn, 2, 2, {device = "cuda"}), false,
                       "ember.randn(2, 2, {device = 'cuda'})")
    assert_unavailable(error_of(ember.full, {2}, 7, {device = "cuda"}), false,
                       "ember.full({2}, 7, {device = 'cuda'})")
    assert_unavailable(error_of(function() return ember.nn.Linear(2, 2):to("cuda") end),
                       false, "model:to('cuda')")
  end)

  it("leaves everything else working", function()
    local t = ember.ones(2, 3)
    pcall(t.cuda, t)
    assert.are.equal("cpu", t.device)
    assert.is_true(rawequal(t:cpu(), t))
    assert.is_true(rawequal(t:to("cpu"), t))
    assert.are.equal("cpu", ember.zeros(2, {device = "cpu"}).device)
    assert.are.equal(12.0, (t + t):sum():item())
    local m = ember.nn.Linear(3, 1)
    pcall(m.cuda, m)
    assert.are.equal("cpu", m.weight.device)
    assert.are.same({2, 1}, m(t):shape())
  end)

  it("loads without the plugin too (EMBER_CUDA_PLUGIN pointing nowhere)", function()
    local out, rc = run.sh("EMBER_CUDA_PLUGIN=/nonexistent/libember_cuda.so " ..
                           run.lua_cmd() .. " -e " .. run.q([[
      local ember = require "ember"
      print(ember.cuda.is_available(), ember.cuda.device_count())
      print(ember.cuda.unavailable_reason())
      print(pcall(ember.ones(1).cuda, ember.ones(1)))
      print(ember.ones(2):sum():item())]]))
    assert.are.equal(0, rc, out)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("false\t0", lines[1], out)
    assert.is_truthy(lines[2] and lines[2]:find("/nonexistent/libember_cuda.so", 1, true),
                     "the reason should name the plugin it tried: " .. out)
    assert.is_truthy(lines[3] and lines[3]:find("^false\t" .. NOT_AVAILABLE:gsub("%p", "%%%0")),
                     out)
    assert.are.equal("2.0", lines[4], out)
  end)
end)

describe("ember.cuda with a GPU", function()
  if not cuda_helper.available() then return end

  it("counts its devices and has no reason to refuse", function()
    assert.is_true(cuda.device_count() >= 1)
    assert.is_nil(cuda.unavailable_reason())
    cuda.synchronize()
  end)

  it("moves every dtype to the device and back bit-exact", function()
    for _, dt in ipairs(DTYPES) do
      local t = awkward(dt)
      local g = t:cuda()
      assert.are.equal("cuda", g.device, dt)
      assert.are.equal(dt, g.dtype, dt)
      assert.are.same(t:shape(), g:shape(), dt)
      local back = g:cpu()
      assert.are.equal("cpu", back.device, dt)
      assert.are.equal(dt, back.dtype, dt)
      assert.are.same(bits(t), bits(back), dt .. ": cpu -> cuda -> cpu")
      assert.are.same(bits(t), bits(t:to("cuda"):to("cpu")), dt .. ": to('cuda'), to('cpu')")
      -- reading on the device copies to the host
      assert.are.same(bits(t), bits(ember.tensor(g:totable(), {dtype = dt})), dt .. ": totable")
    end
  end)

  it("moves any shape and layout: 0-d, empty, 8-d, views", function()
    ember.manual_seed(1)
    local cases = {
      ember.tensor(2.5),
      ember.zeros(0),
      ember.zeros(3, 0, 2),
      ember.randn(2, 1, 2, 1, 2, 1, 2, 3),
      ember.randn(4, 5):t(),                       -- transposed
      ember.randn(6, 7):narrow(2, 2, 3),           -- a narrow window
      ember.randn(3, 1):expand(3, 4),              -- stride 0
      ember.arange(24):view(2, 3, 4):permute(3, 1, 2),
    }
    for i, t in ipairs(cases) do
      local g = t:cuda()
      assert.are.equal("cuda", g.device, "case " .. i)
      assert.are.same(t:shape(), g:shape(), "case " .. i)
      assert.are.same(bits(t), bits(g:cpu()), "case " .. i)
      assert.are.same(bits(t), bits(g:contiguous():cpu()), "case " .. i .. " contiguous")
    end
  end)

  -- ember_cuda_from_host copies through a ring of 4 pinned 4 MiB buffers
  -- and queues the copies (core/cuda/runtime.cu): an upload larger than the
  -- ring goes round it in chunks; uploads in a row reuse each buffer only
  -- after its copy is done; the source may be overwritten once the upload
  -- returns.
  it("uploads through the staging ring: past its size, in a row, the source reused at once", function()
    ember.manual_seed(2)
    local n = 5 * 1024 * 1024 + 3                  -- 20 MiB of float32: 5 chunks and a tail
    local want = ember.randn(n)
    local src = want:clone()
    local g = src:cuda()
    src:fill_(-1)
    assert(g:cpu():equal(want), "a 20 MiB upload differs after the source was overwritten")
    local bytes = ember.randint(0, 255, {2 * 4 * 1024 * 1024 + 5}, {dtype = "uint8"})
    assert(bytes:cuda():cpu():equal(bytes), "an upload of 8 MiB + 5 bytes differs")
    local gs, buf = {}, ember.zeros(100000)
    for i = 1, 40 do                               -- ten times round the ring
      buf:fill_(i)
      gs[i] = buf:cuda()
    end
    buf:fill_(-1)
    for i = 1, 40 do
      local lo, hi = gs[i]:min():item(), gs[i]:max():item()
      assert(lo == i and hi == i, ("upload %d of 40 holds %g..%g, expected %d"):format(i, lo, hi, i))
    end
  end)

  -- EMBER_CUDA_SYNC=1 (read when the plugin loads) waits for the device
  -- after every op: the same results, only slower.
  it("computes the same with EMBER_CUDA_SYNC=1", function()
    local src = [[
      local ember = require "ember"
      ember.manual_seed(3)
      local x, w = ember.randn(2, 3, 8, 8), ember.randn(4, 3, 3, 3)
      local a, b = ember.randn(33, 17), ember.randn(17, 9)
      local on = function(t) return t:cuda() end
      local y = ember.nn.functional.conv2d(on(x), on(w)):relu():sum()
      local m = on(a):matmul(on(b)):sum()
      local i = on(ember.arange(1, 11, 1, {dtype = "int64"})):index_select(1, on(ember.tensor({3, 1, 10}, {dtype = "int64"}))):sum()
      print(("%.6f %.6f %d"):format(y:item(), m:item(), i:item()))]]
    local plain, rc1 = run.lua_run(src)
    local synced, rc2 = run.sh("EMBER_CUDA_SYNC=1 " .. run.lua_cmd() .. " -e " .. run.q(src))
    assert.are.equal(0, rc1, plain)
    assert.are.equal(0, rc2, synced)
    assert.is_truthy(plain:match("^%-?[%d.]+ %-?[%d.]+ 14\n$"), plain)
    assert.are.equal(plain, synced)
  end)

  -- In sync mode a data error (a bad index) is no longer deferred to the
  -- next sync: the op that met it raises, with the CPU's message.
  it("raises a bad index at its own op with EMBER_CUDA_SYNC=1", function()
    local src = [[
      local ember = require "ember"
      local x = ember.arange(1, 11):float():cuda()
      local ok, err = pcall(x.index_select, x, 1, ember.tensor({2, 11}, {dtype = "int64"}):cuda())
      print(ok, err)
      print(pcall(ember.cuda.synchronize))]]
    local out, rc = run.sh("EMBER_CUDA_SYNC=1 " .. run.lua_cmd() .. " -e " .. run.q(src))
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("^false\t[^\n]*index_select: index 11 is out of range for " ..
                              "dimension 1 of size 10\n"), out)
    assert.is_truthy(out:find("\ntrue\n$"), out)
  end)

  it("gives every tensor its device field", function()
    local t = ember.ones(2)
    local g = t:cuda()
    assert.are.equal("cpu", t.device)
    assert.are.equal("cuda", g.device)
    assert.are.equal("cpu", g:cpu().device)
    assert.are.equal("cuda", t:to("cuda").device)
    assert.are.equal("cuda", ember.cuda(t).device)
    assert.is_true(rawequal(g:cuda(), g), "t:cuda() of a CUDA tensor returns it")
    assert.is_true(rawequal(g:to("cuda"), g), "t:to('cuda') of a CUDA tensor returns it")
    for _, mk in ipairs{
      function(o) return ember.zeros(2, 3, o) end,
      function(o) return ember.ones({2, 3}, o) end,
      function(o) return ember.full({2}, 7, o) end,
      function(o) return ember.empty(4, o) end,
      function(o) return ember.arange(0, 5, 1, o) end,
      function(o) return ember.rand(3, o) end,
      function(o) return ember.randn(3, o) end,
      function(o) return ember.randint(1, 6, {3}, o) end,
    } do
      assert.are.equal("cuda", mk({device = "cuda"}).device)
      assert.are.equal("cpu", mk({device = "cpu"}).device)
    end
    assert.are.equal("cuda", ember.zeros_like(g).device)
    assert.are.equal("cuda", (g + 1).device)
  end)

  it("makes zeros, ones and full of every dtype on the device, as on the CPU", function()
    for _, dt in ipairs(DTYPES) do
      for _, mk in ipairs{
        function(o) return ember.zeros(2, 3, o) end,
        function(o) return ember.ones({2, 3}, o) end,
        function(o) return ember.full({2, 3}, 7, o) end,
        function(o) return ember.full_like(ember.zeros(3), -2, o) end,
      } do
        local c = mk({dtype = dt})
        local g = mk({dtype = dt, device = "cuda"})
        assert.are.equal("cuda", g.device, dt)
        assert.are.equal(dt, g.dtype, dt)
        assert.are.same(bits(c), bits(g:cpu()), dt)
      end
    end
  end)

  it("fills integers exactly on the device; out of range is an error", function()
    local g = ember.zeros(3, {dtype = "int64", device = "cuda"})
    g:fill_((1 << 53) + 1)
    assert.are.same({(1 << 53) + 1, (1 << 53) + 1, (1 << 53) + 1}, g:cpu():totable())
    g:fill(math.mininteger)
    assert.are.same({math.mininteger, math.mininteger, math.mininteger}, g:cpu():totable())
    local i = ember.full({2}, 5, {dtype = "int32", device = "cuda"})
    assert.has_error(function() i:fill_(1 << 40) end,
                     "fill_: value 1099511627776 cannot be converted to int32 without overflow")
    assert.are.same({5, 5}, i:cpu():totable())
  end)

  it("draws rand and randn on the device: the CPU's numbers, the same counter", function()
    for _, f in ipairs{"rand", "randn"} do
      ember.manual_seed(99)
      local c = ember[f](4, 5, {dtype = "float64"})
      local after = ember.get_rng_state()
      ember.manual_seed(99)
      local g = ember[f](4, 5, {dtype = "float64", device = "cuda"})
      assert.are.equal("cuda", g.device)
      assert.are.same(after, ember.get_rng_state())
      -- uniform is exact on every device; the normal's log and cos may
      -- round differently on a GPU's math library
      local tol = f == "rand" and 0 or 1e-12
      assert.is_true((g:cpu() - c):abs():max():item() <= tol, f)
      ember.manual_seed(99)
      assert.is_true((ember[f .. "_like"](g):cpu() - c):abs():max():item() <= tol, f .. "_like")
    end
    local ok, err = pcall(ember.rand, 3, {device = "cuda", dtype = "int64"})
    assert.is_false(ok)
    assert.truthy(err:find("rand: expected a floating dtype, got int64", 1, true), err)
  end)

  it("reads results on the host: item, totable, tostring, t[i]", function()
    local t = ember.tensor({{1, 2}, {3, 4}})
    local g = t:cuda()
    assert.are.equal(10.0, g:sum():item())
    assert.are.same(t:totable(), g:totable())
    assert.are.equal(2.0, g[1][2])
    assert.are.equal(tostring(t):match("^[^\n]*"), tostring(g):match("^[^\n]*"))
    g[2][1] = 30
    assert.are.equal(30.0, g:cpu()[2][1])
  end)

  it("counts device memory and gives cached blocks back", function()
    collectgarbage(); collectgarbage()
    cuda.synchronize()
    local before = cuda.memory_allocated()
    assert.are.equal("integer", math.type(before))
    local t = ember.zeros(1024, 1024, {device = "cuda"})      -- 4 MiB
    local during = cuda.memory_allocated()
    assert.is_true(during - before >= 4 * 1024 * 1024,
                   ("allocated grew by %d bytes for a 4 MiB tensor"):format(during - before))
    assert.is_true(cuda.memory_reserved() >= during)
    t = nil   -- luacheck: ignore
    collectgarbage(); collectgarbage()
    assert.are.equal(before, cuda.memory_allocated())
    cuda.empty_cache()
    assert.is_true(cuda.memory_reserved() >= cuda.memory_allocated())
    assert.is_true(cuda.memory_reserved() < during)
  end)

  it("refuses to mix devices in one op, naming both", function()
    local g, c = ember.ones(2):cuda(), ember.ones(2)
    local err = error_of(function() return g + c end)
    assert.is_truthy(err:find("^add: expected a?l?l? ?tensors on the same device, got cuda and cpu$"),
                     "add: expected all tensors on the same device, got cuda and cpu; got: " .. err)
    err = error_of(ember.matmul, c:view(1, 2), g:view(2, 1))
    assert.is_truthy(err:find("^matmul: .*on the same device, got cpu and cuda"), err)
    err = error_of(ember.cat, {g, c})
    assert.is_truthy(err:find("^cat: tensor 2 is on cpu, tensor 1 on cuda"), err)
    err = error_of(ember.where, g:gt(0), g, c)
    assert.is_truthy(err:find("^where: .*on the same device"), err)
  end)
end)
