-- fit draws its batches from ember.data.loader: the rows of each batch,
-- epoch after epoch, are those a loader with the same options gives from
-- the same generator state -- shuffled or in order, with a last short
-- batch, and after validation_split has taken the last rows.
local ember = require "ember"
local nn, data = ember.nn, ember.data

--- A module that records the first column of every input it sees (the
-- rows are numbered there) and passes its input through a Linear.
local function recorder()
  local seen = {}
  local lin = nn.Linear(2, 1)
  local m = nn.Sequential{lin}
  local forward = lin.forward
  lin.forward = function(self, x)
    if ember.is_grad_enabled() then seen[#seen + 1] = x:select(2, 1):totable() end
    return forward(self, x)
  end
  return m, seen
end

--- The batches of `epochs` epochs of a loader, as lists of row numbers.
local function loader_batches(x, y, opts, epochs)
  local l = data.loader(x, y, opts)
  local out = {}
  for _ = 1, epochs do
    for xb in l:iter() do out[#out + 1] = xb:select(2, 1):totable() end
  end
  return out
end

describe("fit's batches", function()
  local N = 23
  local x = ember.stack({ember.arange(1, N + 1):float(), ember.zeros(N)}, 2)
  local y = ember.zeros(N, 1)

  for _, shuffle in ipairs{true, false} do
    it(("are a loader's, shuffle = %s"):format(tostring(shuffle)), function()
      local m, seen = recorder()
      m:compile{optimizer = "sgd", loss = "mse"}
      ember.manual_seed(7)
      m:fit(x, y, {epochs = 3, batch_size = 5, shuffle = shuffle, verbose = 0})
      ember.manual_seed(7)
      local want = loader_batches(x, y, {batch_size = 5, shuffle = shuffle}, 3)
      assert.are.equal(3 * 5, #want)          -- 23 rows: 4 batches of 5 and one of 3
      assert.are.same(want, seen)
    end)
  end

  it("after validation_split: the loader over the first rows", function()
    local m, seen = recorder()
    m:compile{optimizer = "sgd", loss = "mse"}
    ember.manual_seed(3)
    m:fit(x, y, {epochs = 2, batch_size = 4, validation_split = 0.25, verbose = 0})
    local at = math.floor(N * 0.75)
    ember.manual_seed(3)
    local want = loader_batches(x:narrow(1, 1, at), y:narrow(1, 1, at), {batch_size = 4, shuffle = true}, 2)
    assert.are.same(want, seen)
    for _, b in ipairs(seen) do
      for _, r in ipairs(b) do assert.is_true(r <= at, "a validation row was trained on") end
    end
  end)
end)
