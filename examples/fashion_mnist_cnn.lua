-- fashion_mnist_cnn.lua: the seed program -- a small CNN learns
-- Fashion-MNIST, Keras style (compile / fit / evaluate), then is saved,
-- reloaded and asked about a few test images.
--   ./ember examples/fashion_mnist_cnn.lua                 (5 epochs, all 60000 images)
--   ./ember examples/fashion_mnist_cnn.lua --limit 3000 --epochs 1   (a quick run)
-- The data come from Debian's dataset-fashion-mnist package (make run installs it).
local ember = require "ember"
local nn, data = ember.nn, ember.data

local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "examples"
-- --limit N --epochs N (a quick run: fewer images, fewer epochs)
local opt = dofile(here .. "/lib/options.lua")("fashion_mnist_cnn.lua", arg,
  {["--limit"] = {"integer"}, ["--epochs"] = {"integer", 5}})
local limit, epochs = opt["--limit"], opt["--epochs"]

ember.manual_seed(42)
local train, test = data.fashion_mnist{limit = limit}
print(("train %s, test %s"):format(table.concat(train.x:shape(), "x"),
                                   table.concat(test.x:shape(), "x")))

local model = nn.Sequential{
  nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(64, 64, 3), nn.ReLU(),
  nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10),
}
model:summary{1, 28, 28}

model:compile{optimizer = "adam", loss = "sparse_categorical_crossentropy",
              metrics = {"accuracy"}}
local start = ember.clock()
local history = model:fit(train.x, train.y, {epochs = epochs, batch_size = 32,
                                             validation_split = 0.1})
local seconds = ember.clock() - start
local _, acc = model:evaluate(test.x, test.y)
print(("%.1f s per epoch; final val_accuracy %.4f; test accuracy: %.4f")
      :format(seconds / #history.epoch, history.val_accuracy[#history.epoch], acc))

-- save, reload with no code, and predict a few test images
local path = os.tmpname()
model:save(path)
local reloaded = nn.load(path)
os.remove(path)
local probs = reloaded:predict(test.x:narrow(1, 1, 5)):softmax(2)
for i = 1, 5 do
  local p, k = probs[i]:max(1)
  print(("  image %d: %-12s (%.0f%%), truly %s"):format(i, test.classes[k:item()],
        p:item() * 100, test.classes[test.y[i]]))
end
