-- custom_loop.lua: the Fashion-MNIST CNN trained with a hand-written loop,
-- PyTorch style: zero_grad, forward, loss, backward, step; then the test
-- accuracy after each epoch.
--   ./ember examples/custom_loop.lua                 (5 epochs, all 60000 images)
--   ./ember examples/custom_loop.lua --limit 3000 --epochs 1   (a quick run)
local ember = require "ember"
local nn, optim, data = ember.nn, ember.optim, ember.data
local F = nn.functional

local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "examples"
-- --limit N --epochs N (a quick run: fewer images, fewer epochs)
local opt = dofile(here .. "/lib/options.lua")("custom_loop.lua", arg,
  {["--limit"] = {"integer"}, ["--epochs"] = {"integer", 5}})
local limit, epochs = opt["--limit"], opt["--epochs"]

ember.manual_seed(42)
local train, test = data.fashion_mnist{limit = limit}

local model = nn.Sequential{
  nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(64, 64, 3), nn.ReLU(),
  nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10),
}
local opt = optim.Adam(model:parameters(), {lr = 1e-3})

--- Fraction of the test images the model classifies right.
local function accuracy(x, y)
  model:eval()
  local correct = ember.no_grad(function()
    local hits = 0
    for xb, yb in data.loader(x, y, {batch_size = 256}) do
      hits = hits + model(xb):argmax(2):eq(yb):sum():item()
    end
    return hits
  end)
  model:train()
  return correct / x:size(1)
end

for epoch = 1, epochs do
  local start, total, n = ember.clock(), 0, 0
  for xb, yb in data.loader(train.x, train.y, {batch_size = 32, shuffle = true}) do
    opt:zero_grad()
    local loss = F.cross_entropy(model(xb), yb)
    loss:backward()
    opt:step()
    total, n = total + loss:item() * xb:size(1), n + xb:size(1)
  end
  print(("epoch %d/%d: loss %.4f, test accuracy %.4f (%.1f s)")
        :format(epoch, epochs, total / n, accuracy(test.x, test.y), ember.clock() - start))
end
