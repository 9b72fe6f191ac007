-- The "cuda" paths of the core, the bindings and the library, run on a
-- machine without a GPU: the GPU specs (spec/cuda) run in a child busted
-- with EMBER_CUDA_PLUGIN pointing at the stand-in plugin
-- (tools/fake_cuda.c: the CPU kernels over host memory, answering the
-- plugin interface).  This proves the plumbing -- transfers, device checks,
-- autograd across devices, Module:cuda, fit moving batches, saving from
-- the device -- and that the GPU specs hold where the "GPU" computes
-- exactly what the CPU does.  It does not test the CUDA kernels: on a
-- machine with a GPU, spec/cuda runs against the real plugin in the main
-- run.
local run = require "helpers.run"

describe("the cuda paths on the stand-in plugin", function()
  it("pass the GPU specs", function()
    local plugin = run.build .. "/libember_fakecuda.so"
    local f = io.open(plugin, "rb")
    assert.is_not_nil(f, plugin .. " is missing: make test builds it")
    f:close()
    local out, rc = run.sh(("cd %s && OMP_WAIT_POLICY=passive EMBER_CUDA_PLUGIN=%s " ..
                            "busted --lua=lua5.4 spec/cuda"):format(run.q(os.getenv("PWD") or "."),
                           run.q((plugin:sub(1, 1) == "/" and "" or (os.getenv("PWD") or ".") .. "/") .. plugin)))
    local passed, failed = out:match("(%d+) passed, (%d+) failed")
    assert.is_not_nil(passed, out)
    assert.are.equal("0", failed, out)
    assert.is_true(tonumber(passed) > 50, out)
    assert.are.equal(0, rc, out)
  end)
end)

-- Choosing the process's device, on a stand-in with several devices
-- ($EMBER_FAKE_CUDA_DEVICES): from $EMBER_CUDA_DEVICE, else the MPI local
-- rank modulo the count (one rank per GPU under mpirun), else 0; "cuda:N"
-- and ember.cuda.set_device(n) change it while no CUDA tensor exists.
describe("the process's CUDA device", function()
  local plugin = (os.getenv("PWD") or ".") .. "/" .. run.build .. "/libember_fakecuda.so"

  --- Run Lua source in the ember executable on the stand-in with `env`
  -- (a string of NAME=value words) and `devices` devices; its output.
  local function child(env, devices, src)
    local out, rc = run.sh(("EMBER_CUDA_PLUGIN=%s EMBER_FAKE_CUDA_DEVICES=%d %s %s -e %s")
                           :format(run.q(plugin), devices, env, run.ember, run.q(src)))
    assert.are.equal(0, rc, out)
    return (out:gsub("%s+$", ""))
  end

  local CURRENT = "print(ember.cuda.current_device(), ember.cuda.device_count())"

  it("is 0 by default", function()
    assert.are.equal("0\t4", child("", 4, CURRENT))
  end)

  it("follows the MPI local rank, modulo the device count", function()
    assert.are.equal("1\t4", child("OMPI_COMM_WORLD_LOCAL_RANK=1", 4, CURRENT))
    assert.are.equal("1\t4", child("OMPI_COMM_WORLD_LOCAL_RANK=5", 4, CURRENT))
    assert.are.equal("2\t3", child("SLURM_LOCALID=2", 3, CURRENT))
  end)

  it("is $EMBER_CUDA_DEVICE when that is set, before the local rank", function()
    assert.are.equal("3\t4", child("EMBER_CUDA_DEVICE=3 OMPI_COMM_WORLD_LOCAL_RANK=1", 4, CURRENT))
  end)

  it("changes with set_device or a cuda:N name while no CUDA tensor exists", function()
    local out = child("", 2, [[
      ember.cuda.set_device(1)
      local x = ember.ones(3, {device = "cuda:1"})
      print(ember.cuda.current_device(), x.device, x:sum():item())
      print(x:to("cuda:1") == x, ember.zeros(2):to("cuda:1").device)
      local ok, err = pcall(ember.cuda.set_device, 0)
      print(ok, err)
      ok, err = pcall(ember.ones, 2, {device = "cuda:0"})
      print(ok, err)
      x = nil
      collectgarbage(); collectgarbage()
      ember.cuda.set_device(0)
      print(ember.cuda.current_device(), ember.ones(2, {device = "cuda:0"}).device)
    ]])
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("1\tcuda\t3.0", lines[1])
    assert.are.equal("true\tcuda", lines[2])
    assert.truthy(lines[3]:find("^false\t.*cuda.set_device: cannot move to cuda:0 while %d+ bytes " ..
                                "of tensors live on cuda:1"), lines[3])
    assert.truthy(lines[4]:find("^false\t.*cannot move to cuda:0"), lines[4])
    assert.are.equal("0\tcuda", lines[5])
  end)

  it("rejects a device that is not there, and bad names", function()
    local out = child("", 2, [[
      print(pcall(ember.cuda.set_device, 2))
      print(pcall(ember.cuda.set_device, -1))
      print(pcall(ember.ones, 2, {device = "cuda:7"}))
      print(pcall(ember.ones, 2, {device = "cuda:x"}))
      print(ember.cuda.current_device())
    ]])
    assert.truthy(out:find("false\tcuda.set_device: no device cuda:2 (2 devices: cuda:0..cuda:1)", 1, true), out)
    assert.truthy(out:find("expected a device number", 1, true), out)
    assert.truthy(out:find("no device cuda:7", 1, true), out)
    assert.truthy(out:find("unknown device 'cuda:x' (expected 'cpu', 'cuda' or 'cuda:N')", 1, true), out)
    assert.truthy(out:find("\n0$"), out)
  end)
end)

describe("without CUDA", function()
  it("has no current device, and set_device says why", function()
    local out, rc = run.sh(("EMBER_CUDA_PLUGIN=/nonexistent/libember_cuda.so %s -e %s")
      :format(run.ember, run.q([[
        print(ember.cuda.current_device())
        print(pcall(ember.cuda.set_device, 0))
        local s = ember.cuda.stats()
        print(s.syncs, s.uploads, s.allocations, s.releases, s.allocated_bytes, s.cached_bytes)
      ]])))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("^nil\n"), out)
    assert.truthy(out:find("false\tcuda.set_device: CUDA is not available (", 1, true), out)
    assert.truthy(out:find("0\t0\t0\t0\t0\t0", 1, true), out)
  end)
end)
