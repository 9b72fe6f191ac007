-- ember.load(path, {mmap = true}) and nn.load(path, {mmap = true}): the
-- file is mapped (MAP_PRIVATE) and tensors are views of it; writes copy
-- pages and never reach the file; a file that shrinks under the mapping is
-- a Lua error, not a dead process (docs/internals.md, "Mapped files").
local ember = require "ember"
local nn = require "ember.nn"
local run = require "helpers.run"

local dir

local function path(name) return dir .. "/" .. name end

local read_bytes = run.read_file

local write_bytes = run.write_file

--- Assert that fn raises an error whose message holds every plain string.
local function fails_with(fn, ...)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  err = tostring(err)
  for _, s in ipairs({...}) do
    assert.truthy(err:find(s, 1, true), ("message %q lacks %q"):format(err, s))
  end
  return err
end

local LOST = "the file under this mapped tensor shrank or changed size"

before_each(function() dir = run.tmpdir() end)
after_each(function()
  collectgarbage()       -- unmap what the test mapped before its file goes
  collectgarbage()
  run.rmdir(dir)
end)

describe("ember.load with mmap", function()

  local function every_dtype()
    return {
      f32 = ember.arange(0, 12, {dtype = "float32"}):reshape(3, 4),
      f64 = ember.tensor({0.1, -1e300, 5e-324}, {dtype = "float64"}),
      bf16 = ember.tensor({1.5, -2, 3.25}, {dtype = "bfloat16"}),
      f16 = ember.tensor({0.5, -65504}, {dtype = "float16"}),
      i32 = ember.tensor({-7, 8}, {dtype = "int32"}),
      i64 = ember.tensor({math.mininteger, math.maxinteger}, {dtype = "int64"}),
      u8 = ember.tensor({0, 255}, {dtype = "uint8"}),
      b = ember.tensor({true, false, true}),
      empty = ember.zeros(0, 3),
      scalar = ember.tensor(2.5),
    }
  end

  it("gives the same tensors as reading, each a view of the file", function()
    local p = path("all.safetensors")
    local src = every_dtype()
    ember.save(p, src, {k = "v"})
    local t, meta = ember.load(p, {mmap = true})
    local r = ember.load(p)
    assert.are.same({k = "v"}, meta)
    for name, want in pairs(src) do
      assert.are.equal(want.dtype, t[name].dtype, name)
      assert.are.same(want:shape(), t[name]:shape(), name)
      assert.are.same(r[name]:totable(), t[name]:totable(), name)
      assert.is_false(t[name].requires_grad)
      -- empty tensors have no bytes to map: they are made fresh
      assert.are.equal(name ~= "empty", ember._is_mapped(t[name]), name)
      assert.is_false(ember._is_mapped(r[name]), name)
    end
    -- a single tensor's file comes back as that tensor
    local q = path("one.safetensors")
    ember.save(q, ember.ones(2, 2))
    local one = ember.load(q, {mmap = true})
    assert.is_true(ember.is_tensor(one))
    assert.is_true(ember._is_mapped(one))
    assert.are.same({{1, 1}, {1, 1}}, one:totable())
  end)

  it("copies what cannot be used as it lies: widened dtypes, misaligned data", function()
    -- a hand-made file: I16 widens to int32; F32 at offset 2 is misaligned;
    -- F32 at offset 8 is aligned (the data starts at 8 + 80 = 88)
    local h = '{"s":{"dtype":"I16","shape":[1],"data_offsets":[0,2]},' ..
              '"m":{"dtype":"F32","shape":[1],"data_offsets":[2,6]},' ..
              '"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}'
    h = h .. (" "):rep(-(8 + #h) % 8)
    local p = path("odd.safetensors")
    write_bytes(p, string.pack("<I8", #h) .. h .. string.pack("<i2fI2f", -5, 1.5, 0, 2.5))
    local t = ember.load(p, {mmap = true})
    assert.are.equal("int32", t.s.dtype)
    assert.are.same({-5}, t.s:totable())
    assert.are.same({1.5}, t.m:totable())
    assert.are.same({2.5}, t.a:totable())
    assert.is_false(ember._is_mapped(t.s))
    assert.is_false(ember._is_mapped(t.m))
    assert.is_true(ember._is_mapped(t.a))
  end)

  it("writes copy the page: the file and a second mapping keep the old values", function()
    local p = path("w.safetensors")
    ember.save(p, {w = ember.zeros(4, 1024), v = ember.ones(3)})
    local before = read_bytes(p)
    local a = ember.load(p, {mmap = true})
    local b = ember.load(p, {mmap = true})
    a.w:fill_(7)
    a.v[{2}] = 5
    a.w:add_(1)
    assert.are.equal(8 * 4096, a.w:sum():item())
    assert.are.same({1, 5, 1}, a.v:totable())
    assert.are.equal(0, b.w:sum():item())
    assert.are.same({1, 1, 1}, b.v:totable())
    assert.are.equal(before, read_bytes(p))
    -- autograd sees the in-place write as on any tensor
    local x = ember.load(p, {mmap = true}).v:requires_grad_()
    local y = (x * x):sum()
    y:backward()
    assert.are.same({2, 2, 2}, x.grad:totable())
  end)

  it("views outlive the tensor and the table they came from", function()
    local p = path("v.safetensors")
    ember.save(p, {w = ember.arange(0, 100):reshape(10, 10)})
    local view = ember.load(p, {mmap = true}).w:narrow(1, 3, 2):t()
    collectgarbage()
    collectgarbage()
    assert.are.same({10, 2}, view:shape())
    assert.are.equal(20, view[{1, 1}]:item())
    assert.are.equal(39, view[{10, 2}]:item())
  end)

  it("saving mapped tensors writes the same bytes as the file they came from", function()
    local p = path("src.safetensors")
    ember.save(p, every_dtype(), {k = "v"})
    local t, meta = ember.load(p, {mmap = true})
    local q = path("again.safetensors")
    ember.save(q, t, meta)
    assert.are.equal(read_bytes(p), read_bytes(q))
  end)

  it("a file that shrinks under the mapping is a Lua error, and the process lives", function()
    local p = path("shrink.safetensors")
    ember.save(p, {w = ember.ones(256, 1024), v = ember.ones(2)})   -- 1 MiB: unread pages
    local t = ember.load(p, {mmap = true})
    local other = ember.ones(2)
    io.open(p, "w"):close()                       -- truncate it to nothing
    -- the op that read the vanished pages raises, its result dropped
    fails_with(function() return t.w:sum() end, LOST, p)
    -- and so does every later use of any tensor of that file
    fails_with(function() return t.w + 1 end, LOST)
    fails_with(function() return ember.add(other, t.v) end, LOST)
    fails_with(function() return t.v:item() end, LOST)
    fails_with(function() return t.w:narrow(1, 1, 1) end, LOST)
    -- a save that holds one is refused before any file is made: an earlier
    -- file stays as it was, and no temporary file is left
    local keep = path("keep.safetensors")
    ember.save(keep, {a = ember.ones(3)})
    local before = read_bytes(keep)
    fails_with(function() ember.save(keep, {a = ember.ones(3), w = t.v}) end,
               "save: tensor 'w': " .. LOST)
    assert.are.equal(before, read_bytes(keep))
    local left = run.sh("ls -A " .. run.q(dir))
    assert.are.equal("keep.safetensors\nshrink.safetensors\n", left)
    -- other tensors are untouched, and the file loads again once rewritten
    assert.are.same({1, 1}, other:totable())
    ember.save(p, {w = ember.full({2}, 3)})
    assert.are.same({3, 3}, ember.load(p, {mmap = true}).w:totable())
    t = nil
    collectgarbage()
    collectgarbage()
  end)

  it("content rewritten in place shows through pages not yet written", function()
    local p = path("rw.safetensors")
    -- a: 16 KiB from the data start (the first pages); w right after it
    ember.save(p, {a = ember.zeros(4096), w = ember.zeros(1024)})
    local t = ember.load(p, {mmap = true})
    t.w:fill_(1)             -- w's pages are now private copies, and with
                             -- them the page a ends in
    ember.save(path("twos.safetensors"), {a = ember.full({4096}, 2), w = ember.full({1024}, 2)})
    -- overwrite the bytes of the same file, same size (not a rename)
    local f = assert(io.open(p, "r+b"))
    f:write(read_bytes(path("twos.safetensors")))
    f:close()
    assert.are.equal(2, t.a[{1}]:item())         -- a page not copied: the new bytes
    assert.are.equal(0, t.a[{4096}]:item())      -- the copied page: as it was
    assert.are.equal(1024, t.w:sum():item())
  end)

  it("rejects bad options", function()
    local p = path("o.safetensors")
    ember.save(p, ember.ones(1))
    fails_with(function() ember.load(p, {mmap = 1}) end,
               "load: option mmap must be a boolean, got number")
    fails_with(function() ember.load(p, {map = true}) end, "load: unknown option 'map'")
    fails_with(function() ember.load(p, "mmap") end,
               "load: expected an options table as argument 2, got string")
    assert.are.same({1}, ember.load(p, {mmap = false}):totable())
  end)

  it("nn.load maps too, and a bfloat16 model keeps its dtype", function()
    ember.manual_seed(1)
    local m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    local p = path("m.safetensors")
    m:save(p)
    local m2 = nn.load(p, {mmap = true})
    local x = ember.randn(5, 4)
    assert.are.same(m:forward(x):totable(), m2:forward(x):totable())
    fails_with(function() nn.load(p, {mmap = "yes"}) end, "nn.load: option mmap must be a boolean")
    fails_with(function() nn.load(p, {nope = true}) end, "nn.load: unknown option 'nope'")
    -- a state dict saved in bfloat16 comes back in bfloat16
    local sd = {}
    for k, v in pairs(m:state_dict()) do sd[k] = v:to("bfloat16") end
    ember.save(path("sd.safetensors"), sd)
    for k, v in pairs(ember.load(path("sd.safetensors"), {mmap = true})) do
      assert.are.equal("bfloat16", v.dtype, k)
      assert.are.same(sd[k]:totable(), v:totable(), k)
    end
  end)
end)
