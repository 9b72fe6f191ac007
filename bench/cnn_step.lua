--- bench/cnn_step.lua -- milliseconds per training step (forward, loss,
-- backward, Adam step) of the Fashion-MNIST network of DESIGN.md on a
-- random batch of 32 images [32,1,28,28].  Peer: bench/cnn_step_torch.py.
-- Output: "cnn_step <milliseconds>" (median of 5 timed batches of steps).
local ember = require "ember"
local nn, optim = ember.nn, ember.optim
local timing = dofile((arg and arg[0] or "bench/cnn_step.lua"):gsub("[^/]*$", "") .. "timing.lua")

ember.manual_seed(0)
local model = nn.Sequential{
  nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(64, 64, 3), nn.ReLU(),
  nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10),
}
local opt = optim.Adam(model:parameters(), {lr = 1e-3})
local x, y = ember.randn(32, 1, 28, 28), ember.randint(1, 10, {32})

local step = timing.per_call(function(reps)
  for _ = 1, reps do
    opt:zero_grad()
    nn.functional.cross_entropy(model(x), y):backward()
    opt:step()
  end
end, 1)
io.write(string.format("cnn_step %.4f\n", step * 1e3))
