-- image_folder.lua: a small CNN learns the classes of any folder-per-class
-- image set (your own photos: DIR/cat/*.jpg, DIR/dog/*.png, ...), with
-- augmentation and batches decoded ahead on a worker thread, then is saved,
-- reloaded and asked about a few held-out images.
--   ./ember examples/image_folder.lua --dir photos --epochs 10 --size 64
--   ./ember examples/image_folder.lua      (no --dir: a demo folder of 180
--                                           Fashion-MNIST images is made)
-- Every image is read as RGB and resized to SIZE x SIZE; a fifth of the
-- images (a seeded random fifth) is held out for validation.
local ember = require "ember"
local nn, data = ember.nn, ember.data

local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "examples"
local opt, fail = dofile(here .. "/lib/options.lua")("image_folder.lua", arg,
  {["--dir"] = {"string"}, ["--epochs"] = {"integer", 5}, ["--size"] = {"integer", 32}})
local dir, epochs, size = opt["--dir"], opt["--epochs"], opt["--size"]
if epochs < 1 then fail("--epochs must be >= 1, got %d", epochs) end
-- two 2x2 poolings: the side must halve twice
if size < 4 or size % 4 ~= 0 then fail("--size must be a multiple of 4, got %d", size) end

ember.manual_seed(42)

-- no --dir: 60 Fashion-MNIST images of each of 3 classes stand in for
-- photos, written into a temporary folder removed at the end
local demo
if not dir then
  demo = os.tmpname()
  os.remove(demo)
  local fashion = data.fashion_mnist{limit = 1000}
  local count = {}
  for i = 1, fashion.y:size(1) do
    local name = fashion.classes[fashion.y[i]]
    if (name == "Bag" or name == "Sneaker" or name == "Trouser") and (count[name] or 0) < 60 then
      count[name] = (count[name] or 0) + 1
      local folder = demo .. "/" .. name:lower()
      if count[name] == 1 then assert(os.execute("mkdir -p '" .. folder .. "'")) end
      data.write_image(("%s/%03d.png"):format(folder, count[name]), fashion.x[i])
    end
  end
  dir = demo
end

-- a folder that is not an image set is the user's mistake, not a bug
local ok, ds = pcall(data.image_folder, dir, {size = {size, size}, channels = 3})
if not ok then fail("%s", (tostring(ds):gsub("^.-image_folder: ", ""))) end
if #ds < 2 then fail("'%s' holds %d image; at least 2 are needed", dir, #ds) end
print(("%d images of %d classes: %s"):format(#ds, #ds.classes, table.concat(ds.classes, ", ")))

local n_val = math.max(1, #ds // 5)
local train_ds, val_ds = data.random_split(ds, {#ds - n_val, n_val}, {seed = 1})
local normalize = data.Normalize({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})
local train = data.loader(train_ds, {batch_size = 32, shuffle = true, prefetch = 2,
  transform = data.transforms{
    data.RandomCrop(size, {padding = size // 8}),
    data.RandomHorizontalFlip(),
    normalize,
  }})
local val = data.loader(val_ds, {batch_size = 64, transform = data.transforms{normalize}})

local model = nn.Sequential{
  nn.Conv2d(3, 16, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(16, 32, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
  nn.Flatten(), nn.Linear(32 * (size // 4) * (size // 4), #ds.classes),
}
model:compile{optimizer = "adam", loss = "sparse_categorical_crossentropy",
              metrics = {"accuracy"}}
model:fit(train, {epochs = epochs, validation_data = val})
local _, acc = model:evaluate(val)
print(("validation accuracy: %.4f"):format(acc))

-- save with the class names, reload with no code, predict held-out images
local path = os.tmpname()
model:save(path, {metadata = {classes = table.concat(ds.classes, "\n")}})
local reloaded, meta = nn.load(path)
os.remove(path)
local classes = {}
for name in meta.classes:gmatch("[^\n]+") do classes[#classes + 1] = name end
for i = 1, math.min(5, #val_ds) do
  local x, y = val_ds:get(i)
  local probs = reloaded:predict(normalize(x:unsqueeze(1))):softmax(2)
  local p, k = probs[1]:max(1)
  local file = ds.samples[val_ds.indices[i]]:sub(#dir + 2)   -- class/name.png
  print(("  %s: %s (%.0f%%), truly %s"):format(file, classes[k:item()], p:item() * 100,
        classes[y]))
end

if demo then os.execute("rm -r '" .. demo .. "'") end
