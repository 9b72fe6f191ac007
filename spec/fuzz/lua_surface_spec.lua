-- The Lua-surface fuzzer (tools/fuzz/lua_fuzz.lua, issue 7): that it
-- reaches every public function, that a short fixed-seed slice of it runs
-- clean (under `make asan` that slice runs on the sanitizer build), that
-- it reports a crash with its seed, and one regression case for each bug
-- it found.  `make fuzz` runs it for longer.
local ember = require "ember"
local run = require "helpers.run"
local fuzz = dofile("tools/fuzz/lua_fuzz.lua")

-- assert that fn raises an error whose message contains each string
local function fails_with(fn, ...)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  err = tostring(err)
  for _, s in ipairs({...}) do
    assert.truthy(err:find(s, 1, true), ("message %q lacks %q"):format(err, s))
  end
end

local function fuzz_cmd(args)
  return run.q(run.ember) .. " tools/fuzz/lua_fuzz.lua --bin " .. run.q(run.ember) .. " " .. args
end

describe("lua fuzzer", function()
  it("enumerates every public function, method and metamethod at run time", function()
    local names = {}
    for _, t in ipairs(fuzz.targets(ember)) do names[t.name] = true end
    for _, n in ipairs({"ember.add", "ember.tensor", "ember.zeros", "ember.cat",
                        "ember.no_grad", "ember._adam_step", "ember.cuda.is_available",
                        "ember.nn.functional.cross_entropy", "ember.distributed.all_reduce",
                        "ember.nn.mha_forward", "ember.nn.decoder_layer_forward",
                        "ember.autograd.Function", "ember.checkpoint", "ember.metrics.f1",
                        "ember.distributed.all_reduce_coalesced", "Tensor:add", "Tensor:narrow",
                        "Tensor:index_add_", "mt.__add", "mt.__index", "mt.__newindex",
                        "mt.__close", "mt.__gc", "mt.__tostring"}) do
      assert.truthy(names[n], n .. " is not fuzzed")
    end
    -- every function of the ember table is fuzzed or skipped with a reason
    for k, v in pairs(ember) do
      if type(v) == "function" then
        assert.truthy(names["ember." .. k] or type(fuzz.SKIP[k]) == "string", k)
      elseif type(v) == "table" and k ~= "cuda" then
        assert.truthy(k == "nn" or k == "distributed" or k == "autograd" or k == "metrics" or type(fuzz.SKIP_TABLES[k]) == "string",
                      "table " .. k)
      end
    end
    -- and no reason is stale
    for k in pairs(fuzz.SKIP) do assert.equal("function", type(ember[k]), "SKIP." .. k) end
    for k in pairs(fuzz.SKIP_TABLES) do assert.equal("table", type(ember[k]), "SKIP_TABLES." .. k) end
  end)

  it("runs a fixed-seed slice with no crash, hang or sanitizer report", function()
    local out, rc = run.sh(fuzz_cmd("--seed 7 --batches 6 --calls 2000 --timeout 60"))
    assert.equal(0, rc, out)
    assert.truthy(out:find("fuzz: ok: 12000 iterations (6 batches", 1, true), out)
    assert.truthy(out:find("seed 7", 1, true), out)
  end)

  it("replays a batch deterministically, printing each call with --trace", function()
    local cmd = fuzz_cmd("--child --seed 3 --batch 2 --calls 40 --trace")
    local a, rca = run.sh(cmd)
    local b = run.sh(cmd)
    assert.equal(0, rca, a)
    assert.truthy(a:find("call 40: ", 1, true), a)
    assert.truthy(a:find("fuzz-ok calls=40", 1, true), a)
    assert.equal(a, b)
  end)

  it("fails, naming the seed, when a child crashes", function()
    local dir = run.tmpdir()
    local bin = dir .. "/crash.sh"
    local f = assert(io.open(bin, "w"))
    f:write("#!/bin/sh\nkill -SEGV $$\n")
    f:close()
    os.execute("chmod +x " .. run.q(bin))
    local out, rc = run.sh(run.q(run.ember) .. " tools/fuzz/lua_fuzz.lua --bin "
                           .. run.q(bin) .. " --seed 5 --batches 3 --calls 10")
    run.rmdir(dir)
    assert.are_not.equal(0, rc, out)
    assert.truthy(out:find("FAILED in batch 1 of seed 5", 1, true), out)
    assert.truthy(out:find("--child --seed 5 --batch 1", 1, true), out)
  end)

  describe("regressions (bugs the fuzzer found)", function()
    it("backward on a leaf (ASan: heap-use-after-free of the seed gradient in ember_backward)", function()
      local w = ember.ones(1, {requires_grad = true})
      w:backward()
      w:backward()
      assert.same({2}, w.grad:totable())
      local v = ember.ones(2, 3, {requires_grad = true})
      v:backward(ember.full({2, 3}, 3))
      v:backward(ember.ones(2, 3))
      assert.same({{4, 4, 4}, {4, 4, 4}}, v.grad:totable())
    end)

    it("narrow with a length whose end overflows int64 (UBSan: signed overflow in narrow_plain)", function()
      local a = ember.ones(2, 3)
      fails_with(function() return ember.narrow(a, 2, 2, math.maxinteger) end,
                 "narrow: range 2..9223372036854775807 is out of bounds for dimension 2 of size 3")
      fails_with(function() return a:narrow(1, math.maxinteger, 1) end, "narrow: range", "out of bounds")
    end)
  end)
end)
