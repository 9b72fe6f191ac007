-- regression.lua: stochastic gradient descent recovers a line from noisy
-- samples, y = 3x - 2 + noise.
--   ./ember examples/regression.lua
local ember = require "ember"
local nn, optim = ember.nn, ember.optim

-- no options: any argument is refused (examples/lib/options.lua)
local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "examples"
dofile(here .. "/lib/options.lua")("regression.lua", arg or {}, {})

ember.manual_seed(0)
local n = 256
local x = ember.rand(n, 1) * 4 - 2
local y = x * 3 - 2 + ember.randn(n, 1) * 0.1

local model = nn.Linear(1, 1)
local loss_fn = nn.MSELoss()
local opt = optim.SGD(model:parameters(), {lr = 0.1, momentum = 0.9})

for epoch = 1, 100 do
  opt:zero_grad()
  local loss = loss_fn(model(x), y)
  loss:backward()
  opt:step()
  if epoch % 25 == 0 then
    print(("epoch %3d  loss %.5f"):format(epoch, loss:item()))
  end
end

print(("recovered: y = %.3f x %+.3f  (true: y = 3x - 2)"):format(
  model.weight:item(), model.bias:item()))
