-- data.write_image of tensors on the GPU: copied to the CPU and written as
-- the same PNG bytes as their CPU copy (on the stand-in plugin without a
-- GPU; without a CUDA device this file is one pending test that says why,
-- spec/helpers/cuda.lua).
local ember = require "ember"
local cuda_helper = require "helpers.cuda"
local run = require "helpers.run"

local read_bytes = run.read_file

describe("data.write_image of a CUDA tensor", function()
  if not cuda_helper.available() then return end
  local a, b = os.tmpname(), os.tmpname()
  teardown(function() os.remove(a); os.remove(b) end)

  it("writes the bytes of its CPU copy (float and uint8)", function()
    for _, x in ipairs({ember.rand({3, 5, 4}), ember.rand({6, 7}),
                        (ember.rand({1, 3, 3}) * 255):to("uint8")}) do
      ember.data.write_image(a, x:to("cuda"))
      ember.data.write_image(b, x)
      assert.equal(read_bytes(b), read_bytes(a))
    end
  end)
end)
