-- xor.lua: a small MLP learns XOR, PyTorch style.
--   ./ember examples/xor.lua
local ember = require "ember"
local nn, optim = ember.nn, ember.optim

-- no options: any argument is refused (examples/lib/options.lua)
local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "examples"
dofile(here .. "/lib/options.lua")("xor.lua", arg or {}, {})

ember.manual_seed(42)
local x = ember.tensor({{0, 0}, {0, 1}, {1, 0}, {1, 1}})
local y = ember.tensor({{0}, {1}, {1}, {0}})

local model = nn.Sequential{
  nn.Linear(2, 8), nn.Tanh(),
  nn.Linear(8, 1), nn.Sigmoid(),
}
local loss_fn = nn.BCELoss()
local opt = optim.Adam(model:parameters(), {lr = 0.05})

local start = ember.clock()
local loss
for _ = 1, 500 do
  opt:zero_grad()
  loss = loss_fn(model(x), y)
  loss:backward()
  opt:step()
end

local pred = ember.no_grad(function() return model(x) end)
print(("xor: 500 steps in %.3f s, final loss %.5f"):format(ember.clock() - start,
                                                         loss:item()))
for i = 1, 4 do
  print(("  %d xor %d -> %.3f"):format(x[i][1], x[i][2], pred[i][1]))
end
