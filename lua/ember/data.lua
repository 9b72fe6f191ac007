--- ember.data: data sets and batching.
--
-- read_idx reads an IDX file as stored; mnist and fashion_mnist load the
-- two classic data sets ready for a network (float images in [0, 1],
-- classes 1..10); TensorDataset, Subset and random_split are PyTorch's
-- datasets; loader batches tensors or a dataset for a `for` loop, with a
-- shuffle that ember.manual_seed (or its own seed) makes reproducible,
-- torchvision's augmentations in C (data.transforms) and a prefetch
-- thread;
-- chars and windows are a character-level tokenizer and the random
-- (input, target) windows a language model trains on.
--
-- A dataset is any table with `#ds` (its size) and `ds[i]` for i in
-- 1..#ds; an item is a tensor, a number, or a list of them (a tuple, as
-- PyTorch's datasets return).
local ember = require "ember"
local check = require "ember.check"
local blame = require "ember.blame"

local data = {}

-- {======================================================================
-- Argument checks
-- =======================================================================

--- Raise msg (formatted) blaming the function `level` frames up, counted
-- as error() does from the caller of fail.
local function fail(level, fmt, ...)
  error(fmt:format(...), level + 1)
end

--- A value's kind for messages: "a tensor", "a string", "nil", ...
local kind = check.kind

--- An options table (nil gives {}) with only the known keys; level as
-- error() counts it from the function that checks.
local options = check.options

local function shape_str(t)
  return "[" .. table.concat(t:shape(), ",") .. "]"
end

--- The size of a dataset (#ds), or an error naming fname.
local function dataset_len(fname, ds, level)
  local ok, n = false, nil
  if type(ds) == "table" and not ember.is_tensor(ds) then
    ok, n = pcall(function() return #ds end)
  end
  if not ok or math.type(n) ~= "integer" then
    fail(level + 1, "%s: expected a dataset (a table with #ds and ds[i]), got %s",
         fname, kind(ds))
  end
  return n
end

-- }======================================================================

-- {======================================================================
-- IDX files, MNIST and Fashion-MNIST
-- =======================================================================

--- data.read_idx(path): the tensor an IDX file holds, values as stored
-- (gzipped or plain; int8 and int16 files widen to int32).
function data.read_idx(path)
  if type(path) ~= "string" then
    fail(2, "read_idx: expected a file name (a string), got %s", kind(path))
  end
  -- through pcall, so that the core's message carries no position and the
  -- error can blame the caller's line
  local ok, t = pcall(ember._read_idx, path)
  if not ok then error(t, 2) end
  return t
end

--- Where Debian's dataset-fashion-mnist puts the files (a field, not a
-- constant, so that the specs can point it elsewhere).
data._fashion_dir = "/usr/share/datasets/fashion-mnist"

local FASHION_CLASSES = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
local MNIST_CLASSES = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

local SPLITS = {
  {images = "train-images-idx3-ubyte", labels = "train-labels-idx1-ubyte"},
  {images = "t10k-images-idx3-ubyte", labels = "t10k-labels-idx1-ubyte"},
}

--- Is path a directory?  ("dir/." opens only when dir is one.)
local function is_dir(path)
  local f = io.open(path .. "/.", "r")
  if f then f:close() end
  return f ~= nil
end

--- dir/name or dir/name.gz, whichever exists (the plain file first: it
-- reads faster).
local function find_file(fname, dir, name)
  for _, p in ipairs{dir .. "/" .. name, dir .. "/" .. name .. ".gz"} do
    local f = io.open(p, "rb")
    if f then
      f:close()
      if not is_dir(p) then return p end
    end
  end
  fail(5, "%s: neither %s nor %s.gz is in '%s'", fname, name, name, dir)
end

--- read_idx with fname in front of its message.
local function read_for(fname, path)
  local ok, t = pcall(ember._read_idx, path)
  if not ok then fail(5, "%s: %s", fname, tostring(t)) end
  return t
end

--- One split: {x = float32 [n,1,28,28] in [0,1], y = int64 [n] in 1..10,
-- classes}.  Only the first `limit` samples are converted.
local function load_split(fname, dir, split, limit, classes)
  local ipath = find_file(fname, dir, split.images)
  local lpath = find_file(fname, dir, split.labels)
  local images, labels = read_for(fname, ipath), read_for(fname, lpath)
  if images.dtype ~= "uint8" or images:dim() ~= 3 or images:size(2) ~= 28
     or images:size(3) ~= 28 then
    fail(4, "%s: '%s' holds %s %s, expected uint8 images [N,28,28]", fname,
         ipath, images.dtype, shape_str(images))
  end
  if labels.dtype ~= "uint8" or labels:dim() ~= 1 then
    fail(4, "%s: '%s' holds %s %s, expected uint8 labels [N]", fname, lpath,
         labels.dtype, shape_str(labels))
  end
  if images:size(1) ~= labels:size(1) then
    fail(4, "%s: '%s' has %d images but '%s' has %d labels", fname, ipath,
         images:size(1), lpath, labels:size(1))
  end
  local n = images:size(1)
  if limit and limit < n then n = limit end
  -- narrow first: a limited load converts only what it keeps
  local y = labels:narrow(1, 1, n):long()
  if n > 0 and y:max():item() >= #classes then
    fail(4, "%s: '%s' has the label %d, expected 0..%d", fname, lpath,
         y:max():item(), #classes - 1)
  end
  local x = images:narrow(1, 1, n):float():div_(255):unsqueeze(2)
  return {x = x, y = y:add_(1), classes = table.move(classes, 1, #classes, 1, {})}
end

--- (dir [, opts]) or (opts): the directory (or nil) and the limit (or nil).
local function dataset_args(fname, dir, opts)
  if type(dir) == "table" and not ember.is_tensor(dir) then
    if opts ~= nil then
      fail(3, "%s: expected (dir [, opts]) or (opts), got a table and then %s",
           fname, kind(opts))
    end
    dir, opts = nil, dir
  end
  if dir ~= nil and type(dir) ~= "string" then
    fail(3, "%s: expected a directory (a string), got %s", fname, kind(dir))
  end
  opts = options(fname, opts, {limit = true}, 3)
  local limit = opts.limit ~= nil and check.integer(fname, "limit", opts.limit, 0, 3) or nil
  return dir, limit
end

local function load_both(fname, dir, limit, classes)
  if not is_dir(dir) then fail(3, "%s: directory '%s' not found", fname, dir) end
  local train = load_split(fname, dir, SPLITS[1], limit, classes)
  local test = load_split(fname, dir, SPLITS[2], limit, classes)
  return train, test
end

--- data.fashion_mnist([dir] [, {limit = n}]): train, test.  The default
-- directory is where Debian's dataset-fashion-mnist installs the files.
function data.fashion_mnist(dir, opts)
  local d, limit = dataset_args("fashion_mnist", dir, opts)
  if d == nil then
    d = data._fashion_dir
    if not is_dir(d) then
      fail(2, "fashion_mnist: %s not found; install the Debian package " ..
           "dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or " ..
           "pass a directory", d)
    end
  end
  local train, test = load_both("fashion_mnist", d, limit, FASHION_CLASSES)
  return train, test
end

--- data.mnist(dir [, {limit = n}]): train, test (no default directory:
-- Debian has no MNIST package).
function data.mnist(dir, opts)
  local d, limit = dataset_args("mnist", dir, opts)
  if d == nil then
    fail(2, "mnist: expected the directory holding train-images-idx3-ubyte" ..
         "[.gz] and the other three MNIST files, got no directory")
  end
  local train, test = load_both("mnist", d, limit, MNIST_CLASSES)
  return train, test
end

-- }======================================================================

-- {======================================================================
-- Datasets: TensorDataset, Subset, random_split
-- =======================================================================

--- The methods of a dataset class whose integer keys are items: `__index`
-- serves numbers as items and other keys from the class's methods.
local function dataset_class(name, item)
  local class = {__name = "ember.data." .. name}
  local methods = {}
  class.methods = methods
  class.__index = function(self, k)
    if type(k) == "number" then
      local i = math.tointeger(k)
      local n = #self
      if not i or i < 1 or i > n then
        fail(2, "%s: index %s is out of range 1..%d", name, tostring(k), n)
      end
      return item(self, i)
    end
    return methods[k]
  end
  --- ds:get(i): the item's parts as several values (ds[i] is one list).
  function methods.get(self, i)
    local it = self[i]
    if type(it) == "table" and not ember.is_tensor(it) then
      return table.unpack(it, 1, it.n or #it)
    end
    return it
  end
  return class
end

local TensorDataset = dataset_class("TensorDataset", function(self, i)
  local out = {n = #self.tensors}
  for j, t in ipairs(self.tensors) do out[j] = t[i] end
  return out
end)
TensorDataset.__len = function(self) return self.tensors[1]:size(1) end
TensorDataset.__tostring = function(self)
  local parts = {}
  for j, t in ipairs(self.tensors) do parts[j] = t.dtype .. " " .. shape_str(t) end
  return "TensorDataset(" .. table.concat(parts, ", ") .. ")"
end

--- data.TensorDataset(x, y, ...): sample i is {x[i], y[i], ...}.
function data.TensorDataset(...)
  local n = select("#", ...)
  if n == 0 then fail(2, "TensorDataset: expected at least one tensor") end
  local tensors = {...}
  for j = 1, n do
    local t = tensors[j]
    if not ember.is_tensor(t) then
      fail(2, "TensorDataset: argument %d must be a tensor, got %s", j, kind(t))
    end
    if t:dim() == 0 then
      fail(2, "TensorDataset: argument %d is a 0-dim tensor, expected a first " ..
           "dimension to index", j)
    end
    if t:size(1) ~= tensors[1]:size(1) then
      fail(2, "TensorDataset: the tensors' first dims differ: %s and %s " ..
           "(arguments 1 and %d)", shape_str(tensors[1]), shape_str(t), j)
    end
  end
  return setmetatable({tensors = tensors}, TensorDataset)
end

local Subset = dataset_class("Subset", function(self, i)
  return self.dataset[self.indices[i]]
end)
Subset.__len = function(self) return self.indices:numel() end
Subset.__tostring = function(self)
  return ("Subset(%d of %d)"):format(#self, #self.dataset)
end

--- The dataset 1..n whose items are their indices (random_split(n)).
local Range = dataset_class("Range", function(_, i) return i end)
Range.__len = function(self) return self.n end

--- data.Subset(dataset, indices): the items of dataset at indices (a list
-- or an integer tensor, 1-based).
function data.Subset(dataset, indices)
  local n = dataset_len("Subset", dataset, 2)
  local idx = indices
  if type(indices) == "table" and not ember.is_tensor(indices) then
    for k = 1, #indices do
      if math.type(indices[k]) ~= "integer" then
        fail(2, "Subset: index %d must be an integer, got %s", k, kind(indices[k]))
      end
    end
    idx = #indices > 0 and ember.tensor(indices, {dtype = "int64"})
          or ember.zeros({0}, {dtype = "int64"})
  elseif not ember.is_tensor(indices) then
    fail(2, "Subset: expected indices (a list or a tensor), got %s", kind(indices))
  elseif indices:dim() ~= 1 or (indices.dtype ~= "int64" and indices.dtype ~= "int32") then
    fail(2, "Subset: expected a 1-dim int64 or int32 tensor of indices, got %s %s",
         indices.dtype, shape_str(indices))
  else
    idx = indices:long():clone()
  end
  if idx:numel() > 0 then
    local lo, hi = idx:min():item(), idx:max():item()
    if lo < 1 or hi > n then
      fail(2, "Subset: index %d is out of range 1..%d", lo < 1 and lo or hi, n)
    end
  end
  return setmetatable({dataset = dataset, indices = idx}, Subset)
end

--- A Subset's prefetch hook: its data set's, with the rows mapped through
-- the indices (composed with the index a Subset above gives), when that
-- data set has one; nil otherwise (then batches are made item by item).
function Subset._batch_source(self, index)
  local mt = getmetatable(self.dataset)
  local hook = type(mt) == "table" and rawget(mt, "_batch_source")
  if not hook then return nil end
  local idx = self.indices:to("int64"):contiguous()
  return hook(self.dataset, index and idx:index_select(1, index) or idx)
end

--- A permutation of 1..n from the generator at (seed, offset), leaving
-- the global generator's state as it was.
local function seeded_randperm(seed, offset, n)
  local saved = ember.get_rng_state()
  ember.set_rng_state{seed = seed, offset = offset}
  local ok, p = pcall(ember.randperm, n)
  ember.set_rng_state(saved)
  if not ok then error(p, 0) end
  return p
end

--- Sizes from counts (summing to n) or fractions (summing to 1; floors,
-- then the remainder one by one from the first, as PyTorch >= 1.13).
local function split_sizes(lengths, n)
  if type(lengths) ~= "table" or ember.is_tensor(lengths) or #lengths == 0 then
    fail(3, "random_split: expected a non-empty list of lengths, got %s", kind(lengths))
  end
  local counts, all_int, sum = {}, true, 0
  for k = 1, #lengths do
    local v = lengths[k]
    if type(v) ~= "number" or v ~= v then
      fail(3, "random_split: length %d must be a number, got %s", k, kind(v))
    end
    if v < 0 then fail(3, "random_split: length %d must be >= 0, got %s", k, tostring(v)) end
    all_int = all_int and math.type(v) == "integer"
    sum = sum + v
  end
  if all_int then
    if sum ~= n then
      fail(3, "random_split: the lengths sum to %d, expected the dataset's size %d " ..
           "(or fractions summing to 1)", sum, n)
    end
    return lengths
  end
  if math.abs(sum - 1) > 1e-9 then
    fail(3, "random_split: the fractions sum to %s, expected 1 (or counts summing " ..
         "to the dataset's size %d)", tostring(sum), n)
  end
  local total = 0
  for k = 1, #lengths do
    if lengths[k] > 1 then
      fail(3, "random_split: fraction %d must be in [0, 1], got %s", k, tostring(lengths[k]))
    end
    counts[k] = math.floor(n * lengths[k])
    total = total + counts[k]
  end
  for r = 0, n - total - 1 do
    local k = r % #counts + 1
    counts[k] = counts[k] + 1
  end
  return counts
end

--- data.random_split(dataset_or_n, lengths [, {seed = s}]): Subsets of
-- the given sizes that together hold every index once, in random order.
function data.random_split(ds, lengths, opts)
  local n, base
  if type(ds) == "number" then
    n = check.integer("random_split", "the size", ds, 0, 2)
    base = setmetatable({n = n}, Range)
  else
    n = dataset_len("random_split", ds, 2)
    base = ds
  end
  local sizes = split_sizes(lengths, n)
  opts = options("random_split", opts, {seed = true}, 2)
  local perm
  if opts.seed ~= nil then
    if math.type(opts.seed) ~= "integer" then
      fail(2, "random_split: seed must be an integer, got %s", kind(opts.seed))
    end
    perm = seeded_randperm(opts.seed, 0, n)
  else
    perm = ember.randperm(n)
  end
  local out, start = {}, 1
  for k, c in ipairs(sizes) do
    out[k] = setmetatable({dataset = base, indices = perm:narrow(1, start, c):clone()},
                          Subset)
    start = start + c
  end
  return table.unpack(out, 1, #sizes)
end

-- }======================================================================

-- {======================================================================
-- Transforms: per-image augmentation of an N x C x H x W float32 batch in
-- C (core/data_transforms.c), torchvision's names and semantics
-- =======================================================================

local Transform = {__name = "ember.data.Transform"}
Transform.__index = Transform

local function transform(step)
  return setmetatable({steps = {step}}, Transform)
end

local function is_transform(v) return getmetatable(v) == Transform end

--- A pair of positive integers from n or {h, w}.
local function size_pair(fname, size, level)
  if type(size) == "table" then
    if #size ~= 2 then fail(level + 1, "%s: size must be n or {h, w}, got a table of %d", fname, #size) end
    return check.integer(fname, "size[1]", size[1], 1, level + 1),
           check.integer(fname, "size[2]", size[2], 1, level + 1)
  end
  local n = check.integer(fname, "size", size, 1, level + 1)
  return n, n
end

local function number_opt(fname, what, v, def, level)
  if v == nil then return def end
  if type(v) ~= "number" or v ~= v then
    fail(level + 1, "%s: %s must be a number, got %s", fname, what, kind(v))
  end
  return v
end

--- data.RandomCrop(size [, {padding = 0, fill = 0, padding_mode = "constant"}])
function data.RandomCrop(size, opts)
  local h, w = size_pair("RandomCrop", size, 2)
  opts = options("RandomCrop", opts, {padding = true, fill = true, padding_mode = true}, 2)
  local mode = opts.padding_mode or "constant"
  if mode ~= "constant" and mode ~= "reflect" then
    fail(2, "RandomCrop: padding_mode must be \"constant\" or \"reflect\", got %s",
         type(mode) == "string" and ("%q"):format(mode) or kind(mode))
  end
  return transform{kind = "crop", h = h, w = w,
                   padding = opts.padding == nil and 0 or check.integer("RandomCrop", "padding", opts.padding, 0, 2),
                   fill = number_opt("RandomCrop", "fill", opts.fill, 0, 2),
                   reflect = mode == "reflect"}
end

--- data.RandomHorizontalFlip([p = 0.5])
function data.RandomHorizontalFlip(p)
  p = number_opt("RandomHorizontalFlip", "p", p, 0.5, 2)
  if p < 0 or p > 1 then fail(2, "RandomHorizontalFlip: p must be in [0, 1], got %g", p) end
  return transform{kind = "hflip", p = p}
end

--- A list of numbers from a number or a list (name for messages).
local function numbers(fname, what, v)
  if type(v) == "number" then return {v} end
  if type(v) ~= "table" or #v == 0 then
    fail(3, "%s: %s must be a number or a list of numbers, got %s", fname, what, kind(v))
  end
  for i = 1, #v do
    if type(v[i]) ~= "number" then fail(3, "%s: %s[%d] must be a number, got %s", fname, what, i, kind(v[i])) end
  end
  return {table.unpack(v)}
end

--- data.Normalize(mean, std): (x - mean[c]) / std[c]; numbers or lists.
function data.Normalize(mean, std)
  mean, std = numbers("Normalize", "mean", mean), numbers("Normalize", "std", std)
  if #mean ~= #std then
    fail(2, "Normalize: %d means but %d stds", #mean, #std)
  end
  for c = 1, #std do
    if std[c] == 0 or std[c] ~= std[c] then fail(2, "Normalize: std[%d] is %s", c, tostring(std[c])) end
  end
  return transform{kind = "normalize", mean = mean, std = std}
end

--- data.RandomRotation(degrees [, {fill = 0}]): an angle uniform in
-- [-degrees, degrees] (or {lo, hi}), counter-clockwise, bilinear.
function data.RandomRotation(degrees, opts)
  local lo, hi
  if type(degrees) == "table" then
    lo, hi = degrees[1], degrees[2]
    -- not (lo <= hi) also refuses NaN, as the single number's check does
    if #degrees ~= 2 or type(lo) ~= "number" or type(hi) ~= "number" or not (lo <= hi) then
      fail(2, "RandomRotation: degrees must be d >= 0 or {lo, hi} with lo <= hi")
    end
  else
    local d = number_opt("RandomRotation", "degrees", degrees, nil, 2)
    if d == nil or d < 0 then fail(2, "RandomRotation: degrees must be d >= 0 or {lo, hi} with lo <= hi") end
    lo, hi = -d, d
  end
  opts = options("RandomRotation", opts, {fill = true}, 2)
  return transform{kind = "rotate", lo = lo, hi = hi,
                   fill = number_opt("RandomRotation", "fill", opts.fill, 0, 2)}
end

--- data.transforms{t1, t2, ...}: the transforms one after the other.
function data.transforms(list)
  if type(list) ~= "table" or is_transform(list) then
    fail(2, "transforms: expected a list of transforms, got %s", kind(list))
  end
  local steps = {}
  for i = 1, #list do
    if not is_transform(list[i]) then
      fail(2, "transforms: item %d is %s, expected a transform (data.RandomCrop, ...)", i, kind(list[i]))
    end
    for _, st in ipairs(list[i].steps) do steps[#steps + 1] = st end
  end
  return setmetatable({steps = steps}, Transform)
end

local STEP_NAMES = {crop = "RandomCrop", hflip = "RandomHorizontalFlip",
                    normalize = "Normalize", rotate = "RandomRotation"}

function Transform.__tostring(self)
  local names = {}
  for i, st in ipairs(self.steps) do names[i] = STEP_NAMES[st.kind] end
  return "transforms{" .. table.concat(names, ", ") .. "}"
end

--- Check x for the transforms (the caller's name fname).
local function check_images(fname, x, level)
  if not ember.is_tensor(x) or x:dim() ~= 4 or x.dtype ~= "float32" then
    fail(level + 1, "%s: expected a float32 N x C x H x W tensor, got %s", fname,
         ember.is_tensor(x) and ("a %s tensor %s"):format(x.dtype, shape_str(x)) or kind(x))
  end
end

--- Check that g is nil or an ember.Generator (the caller's name fname).
local function check_generator(fname, g, level)
  local mt = getmetatable(g)
  if g ~= nil and not (type(mt) == "table" and mt.__name == "ember.Generator") then
    fail(level + 1, "%s: generator must be an ember.Generator, got %s", fname, kind(g))
  end
end

--- tf(x [, {generator = g}]): the transforms on x, a new tensor.  Each
-- image draws its own numbers; the generator moves by N * #steps.
function Transform.__call(self, x, opts)
  opts = options("transforms", opts, {generator = true}, 2)
  check_generator("transforms", opts.generator, 2)
  check_images("transforms", x, 2)
  local dev = x.device
  local seed, offset = ember._rng_reserve(opts, 0)
  local ok, out = pcall(ember._transform, dev == "cpu" and x or x:cpu(), self.steps, seed, offset)
  if not ok then error(out, 2) end
  ember._rng_reserve(opts, x:size(1) * #self.steps)   -- only once it worked
  return dev == "cpu" and out or out:to(dev)
end


-- {======================================================================
-- The loader
-- =======================================================================

local Loader = {__name = "ember.data.DataLoader"}
Loader.__index = Loader

--- The tensors behind a dataset, when batches can be cut from them with
-- index_select: a TensorDataset, or Subsets of one (then `index` maps
-- the subset's positions to the tensors' rows).  nil otherwise.
local function tensor_source(ds)
  local mt = getmetatable(ds)
  if mt == TensorDataset then return ds.tensors, nil end
  if mt == Subset then
    local tensors, index = tensor_source(ds.dataset)
    if tensors then
      return tensors, index and index:index_select(1, ds.indices) or ds.indices
    end
  end
  return nil
end

--- One batch of a generic dataset's items (tensors or numbers, or lists
-- of them): each part stacked along a new first dim.
local function collate_part(values, part)
  local first = values[1]
  local where = part and ("part %d of the items"):format(part) or "the items"
  if ember.is_tensor(first) then
    for k = 2, #values do
      if not ember.is_tensor(values[k]) then
        fail(4, "loader: %s mixes tensors and %s", where, kind(values[k]))
      end
    end
    return ember.stack(values)
  end
  if type(first) == "number" then
    local ints = true
    for k = 1, #values do
      if type(values[k]) ~= "number" then
        fail(4, "loader: %s mixes numbers and %s", where, kind(values[k]))
      end
      ints = ints and math.type(values[k]) == "integer"
    end
    return ember.tensor(values, {dtype = ints and "int64" or "float32"})
  end
  fail(4, "loader: %s are %s, expected tensors or numbers", where, kind(first))
end

local function collate(items)
  local first = items[1]
  if type(first) ~= "table" or ember.is_tensor(first) then
    return {n = 1, collate_part(items)}
  end
  local nparts = first.n or #first
  local out = {n = nparts}
  for p = 1, nparts do
    local column = {}
    for k = 1, #items do
      local it = items[k]
      if type(it) ~= "table" or ember.is_tensor(it) or (it.n or #it) ~= nparts then
        fail(3, "loader: the dataset's items differ in their number of parts")
      end
      column[k] = it[p]
    end
    out[p] = collate_part(column, p)
  end
  return out
end

--- data.loader(x [, y] [, opts]) or data.loader(dataset [, opts]).
function data.loader(a, b, c)
  local ds, opts
  if ember.is_tensor(a) then
    local tensors = {a}
    if ember.is_tensor(b) then
      tensors[2], opts = b, c
    elseif b == nil then
      opts = c
    elseif type(b) == "table" and c == nil then
      opts = b                                  -- loader(x, opts)
    else
      fail(2, "loader: expected y to be a tensor or nil, got %s", kind(b))
    end
    if a:dim() == 0 then fail(2, "loader: x is a 0-dim tensor, expected samples along dim 1") end
    if tensors[2] then
      if b:dim() == 0 then fail(2, "loader: y is a 0-dim tensor, expected samples along dim 1") end
      if b:size(1) ~= a:size(1) then
        fail(2, "loader: x has %d samples but y has %d (x %s, y %s)", a:size(1),
             b:size(1), shape_str(a), shape_str(b))
      end
    end
    ds = setmetatable({tensors = tensors}, TensorDataset)
  elseif type(a) == "table" then
    dataset_len("loader", a, 2)
    if c ~= nil then
      fail(2, "loader: expected (dataset [, opts]), got a third argument (%s)", kind(c))
    end
    ds, opts = a, b
  else
    fail(2, "loader: expected a tensor x or a dataset, got %s", kind(a))
  end
  opts = options("loader", opts,
                 {batch_size = true, shuffle = true, drop_last = true, seed = true, shard = true,
                  transform = true, prefetch = true, generator = true}, 2)
  if opts.transform ~= nil and not is_transform(opts.transform) then
    fail(2, "loader: transform must be data.transforms{...} or a transform, got %s", kind(opts.transform))
  end
  local self = setmetatable({
    dataset = ds,
    batch_size = opts.batch_size == nil and 1
                 or check.integer("loader", "batch_size", opts.batch_size, 1, 2),
    shuffle = (check.boolean("loader", "shuffle", opts.shuffle, 2) or false),
    drop_last = (check.boolean("loader", "drop_last", opts.drop_last, 2) or false),
    shard = (check.boolean("loader", "shard", opts.shard, 2) or false),
    seed = opts.seed,
    epoch = 0,
    transform = opts.transform,
    generator = opts.generator,
    prefetch = opts.prefetch == nil and 0 or check.integer("loader", "prefetch", opts.prefetch, 0, 2),
  }, Loader)
  if self.seed ~= nil and math.type(self.seed) ~= "integer" then
    fail(2, "loader: seed must be an integer, got %s", kind(self.seed))
  end
  check_generator("loader", self.generator, 2)
  -- two sources of the same numbers: which one wins would be a guess
  if self.seed ~= nil and self.generator ~= nil then
    fail(2, "loader: give seed or generator, not both")
  end
  self._tensors, self._index = tensor_source(ds)
  return self
end

--- The number of samples an epoch of this loader visits: with shard, this
-- rank's share (ember.distributed.shard).
local function epoch_size(self)
  local n = #self.dataset
  if not self.shard then return n end
  local w = ember.distributed.world_size()
  return (n + w - 1) // w
end

--- #loader: the number of batches in an epoch.
function Loader.__len(self)
  local n, bs = epoch_size(self), self.batch_size
  if self.drop_last then return n // bs end
  return (n + bs - 1) // bs
end

function Loader.__tostring(self)
  local shard = ""
  if self.shard then
    shard = (", shard %d of %d"):format(ember.distributed.rank(), ember.distributed.world_size())
  end
  return ("DataLoader(%d samples, batch_size %d, %d batches%s%s)"):format(
    #self.dataset, self.batch_size, #self, self.shuffle and ", shuffled" or "", shard)
end

--- The order of one epoch: a permutation (shuffle) or nil (in order);
-- with shard, this rank's part of rank 1's order (its errors name
-- self._fname: fit sets it on the loader it draws its batches from).
function Loader:_order()
  self.epoch = self.epoch + 1
  local n = #self.dataset
  local order
  if not self.shuffle then
    order = nil
  elseif self.generator ~= nil then
    -- as DataLoader(generator = g): g drives the shuffle too, before the
    -- epoch's transforms reserve their numbers from it (_epoch_rng)
    order = ember.randperm(n, {generator = self.generator})
  elseif self.seed then
    -- epoch e draws at counter (e-1)*n of the seed's stream: the orders
    -- manual_seed(seed) and one randperm(n) per epoch would give
    order = seeded_randperm(self.seed, (self.epoch - 1) * n, n)
  else
    order = ember.randperm(n)
  end
  if self.shard then order = ember.distributed.shard(order, n, self._fname or "loader") end
  return order
end

--- Rows of the dataset's tensors for batch b of an epoch with the given
-- order (a CPU int64 tensor), and its first position in the epoch.
local function batch_rows(self, order, b)
  local n, bs = order and order:numel() or #self.dataset, self.batch_size
  local start = (b - 1) * bs + 1
  local len = math.min(bs, n - start + 1)
  local idx = order and order:narrow(1, start, len) or ember.arange(start, start + len)
  if self._index then idx = self._index:index_select(1, idx) end
  return idx, start, len
end

-- The stream of the transforms' numbers for a loader with a seed: apart
-- from the shuffle's (seeded_randperm draws from the seed itself).
local TRANSFORM_SALT = 0x7472616E73666F72

--- The Philox (seed, offset) of an epoch's transforms, reserved on this
-- thread when the epoch starts: sample k of the epoch (1-based) uses
-- offset + (k - 1) * #steps onwards, whenever its batch is made.
function Loader:_epoch_rng(order)
  if not self.transform then return nil end
  local count = (order and order:numel() or #self.dataset) * #self.transform.steps
  if self.generator == nil and self.seed then
    return {seed = self.seed ~ TRANSFORM_SALT, offset = (self.epoch - 1) * count}
  end
  local seed, offset = ember._rng_reserve({generator = self.generator}, count)
  return {seed = seed, offset = offset}
end

--- x with the loader's transforms, its samples starting at position start.
local function apply_transform(self, x, rng, start)
  if not self.transform then return x end
  check_images("loader: transform", x, 3)
  local dev = x.device
  local out = ember._transform(dev == "cpu" and x or x:cpu(), self.transform.steps, rng.seed,
                               rng.offset + (start - 1) * #self.transform.steps)
  return dev == "cpu" and out or out:to(dev)
end

--- Batch b of an epoch with the given order (rng: _epoch_rng's).
function Loader:_batch(order, b, rng)
  if self._tensors then
    local idx, start = batch_rows(self, order, b)
    local out = {}
    for j, t in ipairs(self._tensors) do
      -- the order lives on the CPU; the index goes where the tensor is
      local tidx = idx.device == t.device and idx or idx:to(t.device)
      out[j] = t:index_select(1, tidx)
    end
    out[1] = apply_transform(self, out[1], rng, start)
    return table.unpack(out, 1, #self._tensors)
  end
  local n, bs = order and order:numel() or #self.dataset, self.batch_size
  local start = (b - 1) * bs + 1
  local len = math.min(bs, n - start + 1)
  local items = {}
  for k = 1, len do
    items[k] = order and order[start + k - 1] or start + k - 1
  end
  -- a dataset that decodes whole batches itself (data.image_folder: one
  -- C call on several threads) gets the indices; its class (metatable)
  -- holds the method
  local mt = getmetatable(self.dataset)
  local batch = type(mt) == "table" and rawget(mt, "batch")
  local out
  if type(batch) == "function" then
    out = table.pack(batch(self.dataset, items))
  else
    for k = 1, len do items[k] = self.dataset[items[k]] end
    out = collate(items)
  end
  out[1] = apply_transform(self, out[1], rng, start)
  return table.unpack(out, 1, out.n)
end

--- What a prefetch worker makes batches from, or nil when they are made
-- on this thread (a Lua dataset, tensors on a device): the dataset's C
-- batch source when its metatable has one (mt._batch_source(ds), a
-- userdata with the __ember_batch_source hook of bindings/lua_internal.h;
-- the rows given to it are the epoch's positions in the dataset; looked
-- up raw, as a dataset's __index may answer any key), else its tensors,
-- contiguous, on the CPU.
local function prefetch_source(self)
  if self.prefetch == 0 then return nil end
  local mt = getmetatable(self.dataset)
  local hook = type(mt) == "table" and rawget(mt, "_batch_source")
  if hook then
    -- made once per loader: the source copies the data set's file list
    if self._hook_source == nil then self._hook_source = hook(self.dataset) or false end
    if self._hook_source then return self._hook_source end
  end
  if not self._tensors then return nil end
  -- taken again each epoch (a non-contiguous tensor copied), so that the
  -- batches see the tensors as they are now, as batches made in place do
  local ts = {}
  for j, t in ipairs(self._tensors) do
    if t.device ~= "cpu" then return nil end
    ts[j] = t:is_contiguous() and t or t:contiguous()
  end
  self._ctensors = ts
  return ts
end

--- The results of pcall(f) without its status, or its error raised
-- again at the user's line.
local function reraised(ok, ...)
  if not ok then blame.reraise((...)) end
  return ...
end

--- loader:iter(): a plain iterator over one new epoch.  With prefetch,
-- batches b+1 .. b+prefetch are being made on a worker thread while the
-- caller has batch b; a new epoch drops what an abandoned one had queued.
function Loader:iter()
  local order, b, nb = self:_order(), 0, #self
  local rng = self:_epoch_rng(order)
  local source = prefetch_source(self)
  if self._queue then self._queue:clear() end
  local q = source and ember._batch_queue()
  self._queue = q
  local submitted = 0
  local function prefetched()
    -- the same check (and message) as apply_transform's in place
    if submitted == 0 and self.transform and source == self._ctensors then
      check_images("loader: transform", source[1], 1)
    end
    -- written so that a huge prefetch cannot overflow b + prefetch
    local last = nb - b <= self.prefetch and nb or b + self.prefetch
    while submitted < last do
      submitted = submitted + 1
      local rows, start = batch_rows(self, order, submitted)
      local steps = self.transform and self.transform.steps
      q:submit(source, rows, steps, rng and rng.seed,
               rng and rng.offset + (start - 1) * #steps)
    end
    return q:next()
  end
  return function()
    b = b + 1
    if b > nb then return nil end
    if not q then return self:_batch(order, b, rng) end
    -- a batch that failed on the worker (a bad image file, ...) is the
    -- user's `for`, not this file's line
    return reraised(pcall(prefetched))
  end
end

--- `for xb, yb in loader do`: the for calls the loader with a nil control
-- value first, which starts a new epoch; then with the previous batch.
function Loader.__call(self, _, control)
  if control == nil or not self._iter then self._iter = self:iter() end
  local it = self._iter
  return it()
end

-- }======================================================================

-- {======================================================================
-- Text: a character-level tokenizer and training windows
-- =======================================================================

local ENCODE_CHUNK = 65536   -- ids per tensor while encoding

--- Check that text is UTF-8 (lax = false: surrogates and code points past
-- U+10FFFF are invalid, as in Lua's utf8 library), else an error naming
-- fname and the byte where the text stops being UTF-8.
local function check_utf8(fname, text, level)
  local ok, bad = utf8.len(text)
  if not ok then
    fail(level + 1, "%s: the text is not valid UTF-8 (at byte %d)", fname, bad)
  end
end

--- "'a' (U+0061)" for a character in messages.
local function char_str(c)
  return ("'%s' (U+%04X)"):format(c, utf8.codepoint(c))
end

local Tokenizer = {}
Tokenizer.__index = Tokenizer
Tokenizer.__name = "ember.data.Tokenizer"

function Tokenizer.__tostring(self)
  return ("Tokenizer(%d characters)"):format(self.vocab_size)
end

--- The check every method makes: called with ':' on a tokenizer.
local function check_self(fname, self)
  if getmetatable(self) ~= Tokenizer then
    fail(3, "%s: call it as a method, tok:%s(...)", fname, fname)
  end
end

--- tok:encode(text): the 1-based ids of text's characters, a 1-d int64
-- tensor (empty for ""); a character not in the vocabulary is an error.
function Tokenizer:encode(text)
  check_self("encode", self)
  if type(text) ~= "string" then fail(2, "encode: expected a string, got %s", kind(text)) end
  check_utf8("encode", text, 2)
  -- ids go into tensors a chunk at a time, so a corpus of megabytes never
  -- becomes a Lua table of one entry per character (16 bytes each)
  local stoi, parts, ids, n, i = self._stoi, {}, {}, 0, 0
  for c in text:gmatch(utf8.charpattern) do
    i = i + 1
    local id = stoi[c]
    if not id then
      fail(2, "encode: character %s (character %d of the text) is not in the vocabulary",
           char_str(c), i)
    end
    n = n + 1
    ids[n] = id
    if n == ENCODE_CHUNK then
      parts[#parts + 1] = ember.tensor(ids, {dtype = "int64"})
      n = 0
    end
  end
  if n > 0 or #parts == 0 then
    parts[#parts + 1] = ember.tensor(table.move(ids, 1, n, 1, {}), {dtype = "int64"})
  end
  return #parts == 1 and parts[1] or ember.cat(parts)
end

--- tok:decode(ids): the text of a 1-d (or 0-d) integer tensor or a list
-- of integer ids; an id outside 1..vocab_size is an error.
function Tokenizer:decode(ids)
  check_self("decode", self)
  if ember.is_tensor(ids) then
    if ids.dtype ~= "int64" and ids.dtype ~= "int32" and ids.dtype ~= "uint8" then
      fail(2, "decode: expected an integer tensor of ids, got %s", ids.dtype)
    end
    if ids:dim() > 1 then
      fail(2, "decode: expected a 1-d tensor of ids, got shape %s (decode each row)",
           shape_str(ids))
    end
    ids = ids:dim() == 0 and {ids:item()} or ids:totable()
  elseif type(ids) ~= "table" then
    fail(2, "decode: expected a tensor or a list of ids, got %s", kind(ids))
  end
  local out, chars, n = {}, self.chars, self.vocab_size
  for i = 1, #ids do
    local id = ids[i]
    if math.type(id) ~= "integer" or id < 1 or id > n then
      fail(2, "decode: id %s (at position %d) is outside the vocabulary 1..%d",
           tostring(id), i, n)
    end
    out[i] = chars[id]
  end
  return table.concat(out)
end

--- data.chars(text) or data.chars{path = file}: a tokenizer whose tokens
-- are the distinct UTF-8 characters of the text, ids 1.. in code point
-- order (nanoGPT's sorted(set(text))), and the text encoded.
function data.chars(arg)
  local text
  if type(arg) == "table" then
    local opts = options("chars", arg, {path = true}, 2)
    if type(opts.path) ~= "string" then
      fail(2, "chars: expected a string or {path = file}, got a table without a path")
    end
    local f, err = io.open(opts.path, "rb")
    if not f then fail(2, "chars: cannot open %s", err) end
    text = f:read("a")
    f:close()
  elseif type(arg) == "string" then
    text = arg
  else
    fail(2, "chars: expected a string or {path = file}, got %s", kind(arg))
  end
  check_utf8("chars", text, 2)
  local seen, chars = {}, {}
  for c in text:gmatch(utf8.charpattern) do
    if not seen[c] then
      seen[c] = true
      chars[#chars + 1] = c
    end
  end
  -- by code point: a string comparison would follow the C library's locale
  local cp = {}
  for _, c in ipairs(chars) do cp[c] = utf8.codepoint(c) end
  table.sort(chars, function(a, b) return cp[a] < cp[b] end)
  local stoi = {}
  for i, c in ipairs(chars) do stoi[c] = i end
  local tok = setmetatable({chars = chars, vocab_size = #chars, _stoi = stoi}, Tokenizer)
  return tok, tok:encode(text)
end

--- data.windows(ids, block_size, batch_size [, {generator =}]): batch_size
-- random windows of block_size ids (x) and the same windows one id later
-- (y), both (batch_size, block_size) int64 on ids's device.  The starts
-- are uniform in 1..#ids - block_size (nanoGPT's get_batch).
function data.windows(ids, block_size, batch_size, opts)
  if not ember.is_tensor(ids) or ids:dim() ~= 1 or
     (ids.dtype ~= "int64" and ids.dtype ~= "int32") then
    fail(2, "windows: expected a 1-d int64 or int32 tensor of ids, got %s",
         ember.is_tensor(ids) and ids.dtype .. " of shape " .. shape_str(ids) or kind(ids))
  end
  for _, a in ipairs{{block_size, "block_size"}, {batch_size, "batch_size"}} do
    if math.type(a[1]) ~= "integer" or a[1] < 1 then
      fail(2, "windows: %s must be an integer >= 1, got %s", a[2], tostring(a[1]))
    end
  end
  opts = options("windows", opts, {generator = true}, 2)
  local n = ids:size(1)
  if n < block_size + 1 then
    fail(2, "windows: %d ids are too few for windows of %d plus the shifted target " ..
         "(at least %d needed)", n, block_size, block_size + 1)
  end
  local starts = opts.generator
    and ember.randint(1, n - block_size, {batch_size, 1}, {generator = opts.generator})
    or ember.randint(1, n - block_size, {batch_size, 1})
  local offsets = ember.arange(0, block_size, {dtype = "int64"}):view(1, block_size)
  local at = (starts + offsets):view(-1)
  if ids.device ~= "cpu" then at = at:to(ids.device) end
  local x = ids:index_select(1, at):view(batch_size, block_size)
  local y = ids:index_select(1, at + 1):view(batch_size, block_size)
  if ids.dtype ~= "int64" then x, y = x:long(), y:long() end
  return x, y
end

-- }======================================================================

-- {======================================================================
-- BPE: GPT-2's byte-level tokenizer (core/bpe.c)
-- =======================================================================

--- data.BPE(vocab_path, merges_path): a tokenizer from GPT-2's two files;
-- data.BPE.train(text, vocab_size [, {min_frequency = 2}]) trains one.
-- Its methods (C, bindings/lua_data.c): tok:encode(text [, {special =
-- true}]) -> int64 ids (GPT-2's plus one), tok:decode(ids) -> string,
-- tok:save(dir), tok:vocab_size().
data.BPE = setmetatable({}, {
  __call = function(_, vocab_path, merges_path)
    return ember._bpe_load(vocab_path, merges_path)
  end,
})

function data.BPE.train(text, vocab_size, opts)
  if type(text) ~= "string" then
    fail(2, "BPE.train: text must be a string, got %s", kind(text))
  end
  if math.type(vocab_size) ~= "integer" then
    fail(2, "BPE.train: vocab_size must be an integer, got %s",
         math.type(vocab_size) and tostring(vocab_size) or kind(vocab_size))
  end
  opts = options("BPE.train", opts, {"min_frequency"}, 2)
  local minf = opts.min_frequency or 2
  if math.type(minf) ~= "integer" or minf < 1 then
    fail(2, "BPE.train: min_frequency must be a positive integer, got %s",
         tostring(minf))
  end
  return ember._bpe_train(text, vocab_size, minf)
end

-- }======================================================================

--- data.csv(path [, opts]) -> x [, y [, classes]]: tabular data (its own
-- file: ember/data_csv.lua).
data.csv = require "ember.data_csv"

-- Images: data.read_image and data.image_folder (PNG and JPEG, decoded in
-- C; file: ember/data_image.lua).
local image = require "ember.data_image"
data.read_image = image.read_image
data.image_folder = image.image_folder
data.write_image = image.write_image

return data
