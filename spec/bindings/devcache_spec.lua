-- The device plugins' caching allocator (core/cuda/devcache.c) over a
-- simulated raw allocator (tools/devcache_test.c): size rounding and
-- shared small segments, best-fit splitting, merging freed neighbours,
-- empty_cache giving wholly free segments back, out-of-memory releasing
-- the cache and retrying once with a message naming requested, allocated
-- and cached bytes, a raw failure that is not out-of-memory reported in
-- its own words, and random allocations from 1 and 4 threads that never
-- overlap and whose counts add up.
local run = require "helpers.run"

describe("the device caching allocator", function()
  local prog
  setup(function()
    local san = os.getenv("EMBER_SAN") or ""
    local out, rc = run.sh("make --no-print-directory BUILD=" .. run.build ..
                           " SAN=" .. run.q(san) .. " " .. run.build .. "/devcache-test")
    assert.are.equal(0, rc, out)
    prog = run.build .. "/devcache-test"
  end)

  it("passes every check of tools/devcache_test.c", function()
    local out, rc = run.sh(prog)
    assert.is_nil(out:find("FAIL", 1, true), out)
    assert.truthy(out:find("devcache-test: 0 failed", 1, true), out)
    assert.are.equal(0, rc, out)
    local n = select(2, out:gsub("\nok ", "")) + (out:find("^ok ") and 1 or 0)
    assert.are.equal(11, n, out)
  end)
end)
