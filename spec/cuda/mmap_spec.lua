-- ember.load(path, {mmap = true}) with CUDA: tensors load as CPU views of
-- the mapping; moving one to the GPU copies it (the mapping stays on the
-- host), and a file saved from GPU tensors maps back as the same values.
-- Without a CUDA device this file is one pending test that says why
-- (spec/helpers/cuda.lua).
local ember = require "ember"
local run = require "helpers.run"
local cuda_helper = require "helpers.cuda"

describe("mapped files and cuda", function()
  if not cuda_helper.available() then return end
  local dir
  before_each(function() dir = run.tmpdir() end)
  after_each(function()
    collectgarbage()
    collectgarbage()
    run.rmdir(dir)
  end)

  it("mapped tensors are CPU views; :cuda() copies them", function()
    local p = dir .. "/g.safetensors"
    local src = {w = ember.arange(0, 12):reshape(3, 4):cuda(),
                 h = ember.tensor({1.5, -2}, {dtype = "bfloat16"}):cuda()}
    ember.save(p, src)
    local t = ember.load(p, {mmap = true})
    for name, s in pairs(src) do
      assert.are.equal("cpu", t[name].device, name)
      assert.is_true(ember._is_mapped(t[name]), name)
      local g = t[name]:cuda()
      assert.are.equal("cuda", g.device)
      assert.are.same(s:cpu():totable(), g:cpu():totable(), name)
    end
    -- the GPU copy does not follow a write to the mapping
    local g = t.w:cuda()
    t.w:fill_(0)
    assert.are.equal(66, g:sum():item())
  end)
end)
