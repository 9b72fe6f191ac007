-- fashion_mnist_mlp.lua: a 784-128-64-10 perceptron learns Fashion-MNIST,
-- Keras style, in batches of 128.
--   ./ember examples/fashion_mnist_mlp.lua                 (5 epochs, all 60000 images)
--   ./ember examples/fashion_mnist_mlp.lua --limit 3000 --epochs 1   (a quick run)
local ember = require "ember"
local nn, data = ember.nn, ember.data

local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "examples"
-- --limit N --epochs N (a quick run: fewer images, fewer epochs)
local opt = dofile(here .. "/lib/options.lua")("fashion_mnist_mlp.lua", arg,
  {["--limit"] = {"integer"}, ["--epochs"] = {"integer", 5}})
local limit, epochs = opt["--limit"], opt["--epochs"]

ember.manual_seed(42)
local train, test = data.fashion_mnist{limit = limit}

local model = nn.Sequential{
  nn.Flatten(),
  nn.Linear(784, 128), nn.ReLU(),
  nn.Linear(128, 64), nn.ReLU(),
  nn.Linear(64, 10),
}
model:compile{optimizer = "adam", loss = "sparse_categorical_crossentropy",
              metrics = {"accuracy"}}
model:summary{1, 28, 28}
local start = ember.clock()
local history = model:fit(train.x, train.y, {epochs = epochs, batch_size = 128,
                                             validation_split = 0.1})
local seconds = ember.clock() - start
local loss, acc = model:evaluate(test.x, test.y, {batch_size = 128})
print(("%.1f s per epoch; test loss %.4f; test accuracy: %.4f")
      :format(seconds / #history.epoch, loss, acc))
