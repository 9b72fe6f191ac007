-- Independent lua_States on concurrent host threads (tools/threads_host.c;
-- docs/c-api.md, "Thread safety"): each thread opens its own state and
-- trains a small seeded CNN (random init and data, dropout, a shuffling
-- loader, Adam, no_grad evaluation, anomaly detection in every other
-- thread), and draws through the C API from its default generator with
-- recording off in every other thread while the others train.  Every
-- result of rounds of 2 and 4 threads must equal, bit for bit, the same
-- seed run alone.  And two states on one thread, drawing in turns, each
-- draw from their own generator.
local run = require "helpers.run"

describe("lua_States on concurrent host threads", function()
  local host
  setup(function()
    local san = os.getenv("EMBER_SAN") or ""
    local out, rc = run.sh("make --no-print-directory BUILD=" .. run.build ..
                           " SAN=" .. run.q(san) .. " " .. run.build .. "/threads-host")
    assert.are.equal(0, rc, out)
    host = run.build .. "/threads-host"
  end)

  it("train seeded models in 2 and 4 threads exactly as each seed alone", function()
    local out, rc = run.sh(host .. " 2 4")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("threads-host: ok", 1, true), out)
    -- every seed ran alone, then in both rounds, with a real result
    local n = 0
    for seed, res in out:gmatch("4 threads seed +(%d+): (loss=%S+ eval=%S+ params=%x+ c=%S+)\n") do
      assert.truthy(out:find("alone    seed +" .. seed .. ": " .. res:gsub("%p", "%%%0")), out)
      n = n + 1
    end
    assert.are.equal(4, n, out)
    assert.are.equal(2, select(2, out:gsub("2 threads seed", "")), out)
    -- two states on one thread drawing in turns: the second draw of the
    -- first state comes after its own 3 numbers, not after the other's 100
    assert.truthy(out:find("two states on one thread, in turns: %S+ 6 %S+\n"), out)
  end)
end)
