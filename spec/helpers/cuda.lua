-- cuda.lua: the one place where a GPU spec decides what "no CUDA device"
-- means.  Call it at the top of a describe block that needs the device:
--
--   local cuda_helper = require "helpers.cuda"
--   describe("...", function()
--     if not cuda_helper.available() then return end
--     ...
--
-- Without a device it registers, in that block, either
--   * a pending test that says why (the default: a machine without a GPU,
--     CI, the development machine), or
--   * with EMBER_REQUIRE_CUDA=1 (the GPU run: bench/run_gpu.sh sets it), a
--     FAILING test that gives the reason, so a run on the GPU machine whose
--     plugin did not load cannot end "0 failed" with every GPU test pending;
-- and returns false.  With a device it registers nothing and returns true.
--
-- busted's `it` and `pending` are not globals in a required module, so
-- they come from busted's own table; the failure goes through luassert so
-- busted counts it as a failure (not an error) with the message as is.
local busted = require "busted"
local luassert = require "luassert"

local M = {}

--- Is EMBER_REQUIRE_CUDA set to something other than "", "0", "no",
-- "false" (case-insensitive)?
function M.required()
  local v = os.getenv("EMBER_REQUIRE_CUDA")
  if not v then return false end
  v = v:lower()
  return v ~= "" and v ~= "0" and v ~= "no" and v ~= "false"
end

--- The reason CUDA is not available, as the specs print it.
function M.reason()
  local ember = require "ember"
  return "no CUDA device: " .. tostring(ember.cuda.unavailable_reason())
end

--- Whether the current describe block may use the device; see above.
-- `on` overrides the check (a spec run CPU against CPU with
-- EMBER_PARITY_DEVICE=cpu passes true).
function M.available(on)
  local ember = require "ember"
  if on == nil then on = ember.cuda.is_available() end
  if on then return true end
  local reason = M.reason()
  if M.required() then
    -- busted places the test here; name the spec file that asked
    local src = debug.getinfo(2, "S").short_src or "?"
    busted.it(("has a CUDA device (EMBER_REQUIRE_CUDA=1, %s)"):format(src), function()
      luassert(false, ("%s: EMBER_REQUIRE_CUDA=1 but CUDA is unavailable: %s"):format(src, reason))
    end)
  else
    busted.pending(reason)
  end
  return false
end

--- Assert that `dev` (a tensor on the device) matches `cpu` (the same
-- computation on the CPU): device, shape, dtype, then the values -- exactly
-- when `tol` is nil, else each within tol * max(1, |cpu value|) (NaN
-- matches NaN).  `what` names the tensor in the failure message.
function M.compare(what, dev, cpu, tol)
  luassert.are.equal("cuda", dev.device:sub(1, 4), what .. ": device")
  luassert.are.same(cpu:shape(), dev:shape(), what .. ": shape")
  luassert.are.equal(cpu.dtype, dev.dtype, what .. ": dtype")
  local a, b = cpu:reshape(-1):totable(), dev:cpu():reshape(-1):totable()
  if not tol then
    luassert.are.same(a, b, what .. ": values")
    return
  end
  for i = 1, #a do
    luassert.is_true(a[i] ~= a[i] and b[i] ~= b[i] or
                     math.abs(a[i] - b[i]) <= tol * math.max(1, math.abs(a[i])),
      ("%s: element %d: %.17g vs %.17g"):format(what, i, a[i], b[i]))
  end
end

return M
