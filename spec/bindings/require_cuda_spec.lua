-- EMBER_REQUIRE_CUDA=1 (spec/helpers/cuda.lua): a GPU run whose plugin did
-- not load must fail, not end "0 failed" with every GPU test pending.  A
-- child busted runs spec/cuda with EMBER_CUDA_PLUGIN pointing at a file
-- that does not exist (so CUDA is unavailable on any machine), once with
-- the switch and once without: with it, each file that needs the device
-- has a failing test giving the reason and busted exits non-zero; without
-- it, those tests are pending and busted exits 0 (the stand-in and CI runs).
local run = require "helpers.run"

local MISSING = "/nonexistent/ember-require-cuda/libember_cuda.so"
-- the spec files of spec/cuda that need a device (each must fail alone)
local GPU_FILES = {"cuda_spec.lua", "loader_spec.lua", "ops_spec.lua", "training_spec.lua"}

--- busted on spec/cuda with the plugin missing; env: extra assignments.
local function child(env)
  local cwd = run.q(os.getenv("PWD") or ".")
  return run.sh(("cd %s && %s EMBER_CUDA_PLUGIN=%s OMP_WAIT_POLICY=passive " ..
                 "busted --lua=lua5.4 spec/cuda"):format(cwd, env, run.q(MISSING)))
end

describe("EMBER_REQUIRE_CUDA", function()
  it("=1 turns 'CUDA unavailable' into a failure in every GPU spec file", function()
    local out, rc = child("EMBER_REQUIRE_CUDA=1")
    assert.are_not.equal(0, rc, "busted exited 0 although CUDA was required:\n" .. out)
    local passed, failed = out:match("(%d+) passed, (%d+) failed")
    assert.is_not_nil(failed, "no summary line:\n" .. out)
    assert.are_not.equal("0", failed, out)
    assert.is_true(tonumber(failed) >= #GPU_FILES,
                   ("expected at least %d failures (one per GPU file), got %s:\n%s")
                   :format(#GPU_FILES, failed, out))
    assert.is_truthy(out:find(": EMBER_REQUIRE_CUDA=1 but CUDA is unavailable: no CUDA device: ", 1, true),
                     "the failure should give the reason:\n" .. out)
    assert.is_truthy(out:find(MISSING, 1, true), "the reason should name the missing plugin:\n" .. out)
    for _, f in ipairs(GPU_FILES) do
      assert.is_truthy(out:find("spec/cuda/" .. f .. ": EMBER_REQUIRE_CUDA=1 but", 1, true),
                       f .. " has no failure:\n" .. out)
    end
    assert.is_true(tonumber(passed) >= 0)
  end)

  it("unset (or 0) leaves them pending and busted exits 0", function()
    for _, env in ipairs{"", "EMBER_REQUIRE_CUDA=0"} do
      local out, rc = child(env)
      local failed = out:match("%d+ passed, (%d+) failed")
      assert.are.equal("0", failed, env .. ":\n" .. out)
      assert.are.equal(0, rc, env .. ":\n" .. out)
      assert.is_truthy(out:find("no CUDA device: ", 1, true), env .. ": no pending reason:\n" .. out)
      assert.is_falsy(out:find("EMBER_REQUIRE_CUDA=1 but", 1, true), env .. ":\n" .. out)
    end
  end)
end)
