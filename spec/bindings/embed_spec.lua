-- The C host example (examples/embed): builds against libember.a, wraps a
-- host buffer without copying, runs Lua on it, reads the results back.
local run = require "helpers.run"

describe("embedding in a C host", function()
  it("builds and runs examples/embed/host", function()
    local san = os.getenv("EMBER_SAN") or ""
    local out, rc = run.sh("make --no-print-directory embed BUILD=" .. run.build ..
                           " SAN=" .. run.q(san))
    assert.are.equal(0, rc, out)
    out, rc = run.sh(run.build .. "/embed-host")
    assert.are.equal(0, rc, out)
    -- the Lua function changed the host's own buffer: no copy was made
    assert.truthy(out:find("buffer after Lua = {0.0500, 0.1000, 0.1500, 0.2000, 0.2500, 0.2500}", 1, true), out)
    assert.truthy(out:find("max = 0.2500 at flat position 5", 1, true), out)
    assert.truthy(out:find("Lua error caught: .*max: cannot reduce an empty tensor"), out)
    assert.truthy(out:find("Ember released the buffer", 1, true), out)
    assert.truthy(out:find("host: ok", 1, true), out)
    -- it finds OpenBLAS's OpenMP build first, as docs/c-api.md recommends
    -- (where Debian's libopenblas0-openmp is installed)
    local omp = run.sh("ls -d /usr/lib/$(cc -dumpmachine)/openblas-openmp 2>/dev/null")
    if omp ~= "" then
      out = run.sh("ldd " .. run.build .. "/embed-host")
      assert.truthy(out:find("openblas-openmp/libopenblas", 1, true), out)
    end
  end)
end)
