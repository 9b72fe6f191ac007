-- Data-parallel training over MPI (ember.distributed, docs/distributed.md).
--
-- The jobs run under `mpirun --oversubscribe -np 2` (make test installs
-- Open MPI): spec/dist/collectives.lua checks the collectives, the
-- loader's shard and DistributedDataParallel from inside both ranks;
-- spec/dist/train_equiv.lua trains the same model two ways, to compare
-- with one process; spec/dist/faults.lua makes one rank fail.  The world of
-- one (no launcher) is checked in this process.
local ember = require "ember"
local run = require "helpers.run"
local nn = ember.nn
local dist = ember.distributed

local ROOT = os.getenv("PWD") or "."

--- Run `script args` on 2 ranks; returns the output and exit code.
local function job(script, args, env)
  local cmd, why = run.mpirun(2, run.ember .. " " .. script .. " " .. (args or ""), 120)
  if not cmd then return nil, why end
  return run.sh((env or "") .. " " .. cmd)
end

--- Lines "ok name" / "FAIL name: why" of a collectives run: every check
-- must be ok on both ranks.
local function expect_all_ok(out, rc, min_checks)
  assert.are.equal(0, rc, out)
  local ok = {}
  for name in out:gmatch("\nok ([^\n]+)") do ok[name] = (ok[name] or 0) + 1 end
  local fails = {}
  for line in out:gmatch("FAIL [^\n]+") do fails[#fails + 1] = line end
  assert.are.same({}, fails, out)
  local n = 0
  for name, count in pairs(ok) do
    n = n + 1
    assert.are.equal(2, count, name .. " ran on one rank only\n" .. out)
  end
  assert.is_true(n >= min_checks, ("%d checks, expected %d or more\n%s"):format(n, min_checks, out))
end

describe("ember.distributed under mpirun -np 2", function()
  local have_mpi = run.mpirun(2, "true")
  local plugin = run.build .. "/libember_mpi.so"
  local f = io.open(plugin, "rb")
  if f then f:close() end
  if not have_mpi or not f then
    pending(("needs mpirun and %s (make test installs Open MPI and builds it)"):format(plugin))
    return
  end

  it("collectives, the loader's shard and DistributedDataParallel on CPU tensors", function()
    local dir = run.tmpdir()
    local out, rc = job("spec/dist/collectives.lua", "", "DIST_TMP=" .. run.q(dir))
    run.rmdir(dir)
    expect_all_ok("\n" .. out, rc, 14)
  end)

  it("the same on \"cuda\" tensors, through host staging (stand-in CUDA plugin)", function()
    local fake = ROOT .. "/" .. run.build .. "/libember_fakecuda.so"
    local dir = run.tmpdir()
    local out, rc = job("spec/dist/collectives.lua", "",
                        "DIST_TMP=" .. run.q(dir) .. " EMBER_CUDA_PLUGIN=" .. run.q(fake))
    run.rmdir(dir)
    assert.truthy(out:find("ok cuda all_reduce of every dtype and op", 1, true), out)
    expect_all_ok("\n" .. out, rc, 18)
  end)

  it("the stock lua5.4 with require \"ember\" joins the job and leaves it at exit", function()
    local src = "local ember = require 'ember'; local dist = ember.distributed; " ..
                "local r, w = dist.init(); local t = dist.all_reduce(ember.tensor{r}, 'sum'); " ..
                "print(('rank %d of %d: %s %g'):format(r, w, dist.backend(), t[1]))"
    local out, rc = run.sh(run.mpirun(2, run.lua_cmd() .. " -e " .. run.q(src)))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("rank 1 of 2: mpi 3", 1, true), out)
    assert.truthy(out:find("rank 2 of 2: mpi 3", 1, true), out)
  end)

  it("fit and evaluate's precision, recall, f1, top-k: the whole set's values on every rank", function()
    local out, rc = run.sh(run.mpirun(2, run.lua_cmd() .. " spec/dist/metrics_ranks.lua"))
    assert.are.equal(0, rc, out)
    local _, n = out:gsub("ok rank %d", "")
    assert.are.equal(4, n, out)
  end)

  it("a first collective on an empty \"cuda\" tensor (a 0-byte staging block)", function()
    local fake = ROOT .. "/" .. run.build .. "/libember_fakecuda.so"
    local src = "print(pcall(ember.distributed.all_reduce, ember.zeros(0):cuda()))"
    local out, rc = job("-e " .. run.q(src), "", "EMBER_CUDA_PLUGIN=" .. run.q(fake))
    assert.are.equal(0, rc, out)
    local _, n = out:gsub("true\ttensor%(%[%]%)", "")
    assert.are.equal(2, n, out)
  end)

  describe("2 ranks at batch 32 end with the weights of 1 process at batch 64", function()
    local function max_rel(a, b)
      local worst, n = 0, 0
      for k, t in pairs(a) do
        assert.is_not_nil(b[k], k)
        local d = (t - b[k]):abs():max():item() / math.max(t:abs():max():item(), 1e-12)
        worst, n = math.max(worst, d), n + 1
      end
      assert.are.equal(6, n)
      return worst
    end
    for _, opt in ipairs{"adam", "sgd"} do
      it(("%s: DistributedDataParallel and fit{distributed = true}, with and without accumulation")
         :format(opt), function()
        local dir = run.tmpdir()
        local one = dir .. "/single.safetensors"
        local out, rc = run.sh(("%s spec/dist/train_equiv.lua single %s %s"):format(run.ember, one, opt))
        assert.are.equal(0, rc, out)
        local ref = ember.load(one)
        for _, mode in ipairs{"ddp", "fit", "ddp_accum", "fit_accum"} do
          local path = ("%s/%s.safetensors"):format(dir, mode)
          out, rc = job("spec/dist/train_equiv.lua", mode .. " " .. path .. " " .. opt)
          assert.are.equal(0, rc, out)
          local got = ember.load(path)
          local rel = max_rel(ref, got)
          assert.is_true(rel < 1e-5, ("%s: max relative difference %g"):format(mode, rel))
          -- and not trivially: the weights moved from their start
          if mode:match("^fit") then
            local l1, l2 = out:match("rank 1 loss ([%d%.]+)"), out:match("rank 2 loss ([%d%.]+)")
            assert.is_not_nil(l1, out)
            assert.are.equal(l1, l2, "the ranks report the same averaged loss\n" .. out)
          end
        end
        run.rmdir(dir)
      end)
    end
  end)

  describe("faults", function()
    it("a rank that raises stops the whole job with its error", function()
      local out, rc = job("spec/dist/faults.lua", "raise")
      assert.are_not.equal(124, rc, "the job hung\n" .. out)
      assert.are_not.equal(0, rc, out)
      assert.truthy(out:find("rank 2 of 2: spec/dist/faults.lua:%d+: boom on rank 2"), out)
      assert.falsy(out:find("passed the all_reduce", 1, true), out)
    end)

    it("an error inside fit on one rank stops every rank", function()
      local out, rc = job("spec/dist/faults.lua", "fit")
      assert.are_not.equal(124, rc, "the job hung\n" .. out)
      assert.are_not.equal(0, rc, out)
      assert.truthy(out:find("rank 2 of 2: [^\n]*loss failed on rank 2, batch 3"), out)
      assert.falsy(out:find("fit returned", 1, true), out)
    end)

    it("a NaN loss on one rank stops fit on every rank at the same batch", function()
      local out, rc = job("spec/dist/faults.lua", "nan")
      assert.are.equal(0, rc, out)
      assert.truthy(out:find("rank 1 stopped: nan at epoch 1 batch 5", 1, true), out)
      assert.truthy(out:find("rank 2 stopped: nan at epoch 1 batch 5", 1, true), out)
    end)

    it("ranks with different numbers of samples: the same error on each, no hang", function()
      local out, rc = job("spec/dist/faults.lua", "sizes")
      assert.are.equal(0, rc, out)
      for r = 1, 2 do
        local n = r == 1 and 64 or 63
        for _, what in ipairs{"shuffle false", "shuffle true"} do
          assert.truthy(out:find(("rank %d %s: spec/dist/faults.lua:%%d+: fit: the ranks have " ..
            "different numbers of samples %%(%d on rank %d; 63..64 across ranks%%)"):format(r, what, n, r)), out)
        end
        assert.truthy(out:find(("rank %d evaluate: [^\n]*evaluate: the ranks have different " ..
          "numbers of samples"):format(r)), out)
      end
    end)

    it("fit: files from rank 1 only, the same logs and stop on every rank", function()
      local dir = run.tmpdir()
      local out, rc = job("spec/dist/faults.lua", "checkpoint " .. run.q(dir))
      assert.are.equal(0, rc, out)
      local files = run.sh("ls " .. run.q(dir))
      run.rmdir(dir)
      assert.are.equal("ckpt-1-1.safetensors\nckpt-1-2.safetensors\nlog-1.csv\n", files)
      local h1 = out:match("rank 1 history: ([^\n]+)")
      local h2 = out:match("rank 2 history: ([^\n]+)")
      assert.is_not_nil(h1, out)
      assert.are.equal(h1, h2, out)
      assert.truthy(h1:find("^epochs 2 "), "EarlyStopping after epoch 2 on both ranks: " .. h1)
      local e1, e2 = out:match("rank 1 evaluate: ([^\n]+)"), out:match("rank 2 evaluate: ([^\n]+)")
      assert.is_not_nil(e1, out)
      assert.are.equal(e1, e2, out)
      -- progress from rank 1 only: one "Epoch 1/4" line
      local _, count = out:gsub("Epoch 1/4", "")
      assert.are.equal(1, count, out)
    end)
  end)
end)

describe("ember.distributed in a world of one (no launcher)", function()
  it("init, rank and the collectives", function()
    local r, w = dist.init()
    assert.are.equal(1, r)
    assert.are.equal(1, w)
    assert.are.equal("none", dist.backend())
    assert.is_true(dist.is_initialized())
    local t = ember.tensor{1, 2, 3}
    assert.are.equal(t, dist.all_reduce(t, "mean"))
    assert.are.same({1, 2, 3}, t:totable())
    assert.are.same({{1, 2, 3}}, dist.all_gather(t):totable())
    assert.are.same({1, 2, 3}, dist.broadcast(t, 1):totable())
    dist.all_reduce_coalesced({t, ember.ones(2)}, "sum")
    dist.barrier()
    local ok, err = pcall(dist.broadcast, t, 2)
    assert.is_false(ok)
    assert.truthy(err:find("root 2 is out of range 1..1", 1, true), err)
  end)

  it("a launcher without the MPI plugin is a clear error; without a launcher all works", function()
    local env = "OMPI_COMM_WORLD_SIZE=2 EMBER_MPI_PLUGIN=/nonexistent/libember_mpi.so "
    local out, rc = run.sh(env .. run.ember .. " -e " ..
      run.q("print(pcall(ember.distributed.init)); print(ember.distributed.is_initialized())"))
    assert.are.equal(0, rc, out)
    assert.are.equal("false\tinit: this process was started by a launcher (OMPI_COMM_WORLD_SIZE " ..
      "is set), but MPI is unavailable: cannot load /nonexistent/libember_mpi.so " ..
      "(EMBER_MPI_PLUGIN): no such file\nfalse\n", out)
    out, rc = run.sh("EMBER_MPI_PLUGIN=/nonexistent/libember_mpi.so " .. run.ember .. " -e " ..
      run.q("print(ember.distributed.init()); print(ember.distributed.is_available())"))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("^1\t1\nfalse\t"), out)
  end)

  it("the loader's shard is the whole epoch", function()
    ember.manual_seed(4)
    local a = {}
    for xb in ember.data.loader(ember.arange(1, 11), {batch_size = 4, shuffle = true}) do
      for _, v in ipairs(xb:totable()) do a[#a + 1] = v end
    end
    ember.manual_seed(4)
    local b = {}
    for xb in ember.data.loader(ember.arange(1, 11), {batch_size = 4, shuffle = true, shard = true}) do
      for _, v in ipairs(xb:totable()) do b[#b + 1] = v end
    end
    assert.are.same(a, b)
    assert.has_error(function() ember.data.loader(ember.ones(3), {shard = 1}) end,
                     "loader: shard must be a boolean, got 1")
  end)

  it("DistributedDataParallel is its module", function()
    ember.manual_seed(1)
    local net = nn.Linear(3, 2)
    local model = nn.DistributedDataParallel(net)
    local x = ember.randn(4, 3)
    assert.are.same(net(x):totable(), model(x):totable())
    model(x):sum():backward()
    local g = net.weight.grad:clone()
    net:zero_grad()
    net(x):sum():backward()
    assert.are.same(g:totable(), net.weight.grad:totable())
    local names = {}
    for k in model:named_parameters() do names[#names + 1] = k end
    assert.are.same({"module.weight", "module.bias"}, names)
    assert.has_error(function() nn.DistributedDataParallel(3) end,
                     "DistributedDataParallel: expected a module to wrap, got number")
    assert.has_error(function() nn.DistributedDataParallel(net, {bucket = 1}) end,
                     "DistributedDataParallel: unknown option 'bucket'; did you mean 'bucket_mb'? " ..
                     "(known: bucket_mb, broadcast_buffers)")
  end)

  it("fit{distributed = true} is fit", function()
    local function train(distributed)
      ember.manual_seed(2)
      local m = nn.Sequential{nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)}
      m:compile{optimizer = "sgd", loss = "mse", distributed = distributed}
      local x, y = ember.randn(20, 3), ember.randn(20, 1)
      local h = m:fit(x, y, {epochs = 2, batch_size = 4, verbose = 0, validation_split = 0.2})
      return h.loss[2], h.val_loss[2], m[1].weight:totable()
    end
    local a = {train(false)}
    local b = {train(true)}
    assert.are.same(a, b)
    local m = nn.Linear(1, 1)
    m:compile{optimizer = "sgd", loss = "mse"}
    assert.has_error(function() m:fit(ember.ones(2, 1), ember.ones(2, 1), {distributed = 1}) end,
                     "fit: distributed must be a boolean, got number")
    assert.has_error(function() m:compile{optimizer = "sgd", loss = "mse", distributed = "yes"} end,
                     "compile: distributed must be a boolean, got string")
  end)
end)
