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
