--- ember.data_image: images from files (PNG and JPEG, decoded in C by
-- core/io_image.c) and folder-per-class image sets.
--
-- data.read_image(path [, opts]) -> float32 C x H x W in [0, 1]
-- data.image_folder(dir, opts)   -> a dataset like torchvision's ImageFolder
-- data.write_image(path, x [, opts]) writes a C x H x W or H x W tensor as PNG
--
-- The dataset decodes lazily: ds[i] reads one file, ds:batch(indices) a
-- whole batch in one C call (on several threads), which data.loader uses
-- instead of decoding and stacking item by item.
local ember = require "ember"
local check = require "ember.check"
local blame = require "ember.blame"
local files = require "ember.files"

--- Raise msg at the user's call (the loader's frames in data.lua are not
-- the user's either: a batch fails at the user's `for`).
local raise = blame.failer("ember/data_image.lua", "ember/data.lua")

local image = {}

local MAX_PIXELS = 1 << 28   -- EMBER_IMAGE_MAX_PIXELS (core/include/ember.h)
local DEFAULT_EXTENSIONS = {".png", ".jpg", ".jpeg"}

--- opts.size as h, w (nil, nil without one).
local function size_opt(fname, size)
  if size == nil then return nil, nil end
  if type(size) ~= "table" or ember.is_tensor(size) or #size ~= 2 then
    raise(("%s: size must be a table {h, w}, got %s"):format(fname, check.kind(size)))
  end
  local h = check.integer(fname, "size[1]", size[1], 1, raise)
  local w = check.integer(fname, "size[2]", size[2], 1, raise)
  if h > MAX_PIXELS // w then
    raise(("%s: size {%d, %d} is more than the limit of %d pixels"):format(fname, h, w, MAX_PIXELS))
  end
  return h, w
end

local function channels_opt(fname, c)
  if c == nil then return 3 end
  if c ~= 1 and c ~= 3 then
    raise(("%s: channels must be 1 (grey) or 3 (RGB), got %s"):format(fname, tostring(c)))
  end
  return math.tointeger(c)
end

--- Call the C reader f(...), its message with fname in front instead of
-- the reader's own name.
local function decode(fname, f, ...)
  local ok, t = pcall(f, ...)
  if not ok then
    raise((tostring(t):gsub("^read_image: ", fname .. ": ")))
  end
  return t
end

local function check_path(fname, path)
  if type(path) ~= "string" then
    raise(("%s: path must be a string, got %s"):format(fname, check.kind(path)))
  end
  if path:find("\0", 1, true) then
    raise(("%s: the path contains a zero byte"):format(fname))
  end
end

--- data.read_image(path [, {size = {h, w}, channels = 3}])
function image.read_image(path, opts)
  check_path("read_image", path)
  opts = check.options("read_image", opts, {size = true, channels = true}, 2)
  local h, w = size_opt("read_image", opts.size)
  local c = channels_opt("read_image", opts.channels)
  return decode("read_image", ember._read_image, path, c, h or 0, w or 0)
end

-- {======================================================================
-- ImageFolder
-- =======================================================================

local ImageFolder = {__name = "ember.data.ImageFolder"}

--- ds[i] -> {x, y, n = 2}, as TensorDataset items; other keys: methods.
ImageFolder.__index = function(self, k)
  if type(k) == "number" then
    local i = math.tointeger(k)
    if not i or i < 1 or i > #self.samples then
      raise(("image_folder: index %s is out of range 1..%d"):format(tostring(k), #self.samples))
    end
    local x = decode("image_folder", ember._read_image, self.samples[i], self.channels,
                     self.size and self.size[1] or 0, self.size and self.size[2] or 0)
    return {x, self.labels[i], n = 2}
  end
  return ImageFolder[k]
end

ImageFolder.__len = function(self) return #self.samples end

ImageFolder.__tostring = function(self)
  local size = self.size and ("%dx%d"):format(self.size[1], self.size[2]) or "native size"
  return ("ImageFolder(%d images, %d classes, %d channels, %s)"):format(
    #self.samples, #self.classes, self.channels, size)
end

--- ds:get(i) -> x, y
function ImageFolder.get(self, i)
  local it = self[i]
  return it[1], it[2]
end

--- ds:batch(indices) -> x (float32 N x C x H x W), y (int64 N): the
-- samples at indices (a list of integers or a 1-D integer tensor), decoded
-- in one C call.  Without a size the images must share theirs.
function ImageFolder.batch(self, indices)
  if ember.is_tensor(indices) then
    local list = {}
    for k = 1, indices:numel() do list[k] = indices[k] end
    indices = list
  elseif type(indices) ~= "table" then
    raise(("image_folder: batch expects a list of indices, got %s"):format(check.kind(indices)))
  end
  local n = #self.samples
  local paths, labels = {}, {}
  for k, i in ipairs(indices) do
    local j = math.tointeger(i)
    if not j or j < 1 or j > n then
      raise(("image_folder: index %s is out of range 1..%d"):format(tostring(i), n))
    end
    paths[k], labels[k] = self.samples[j], self.labels[j]
  end
  local y = ember.tensor(labels, {dtype = "int64"})
  if self.size then
    return decode("image_folder", ember._read_images, paths, self.channels,
                  self.size[1], self.size[2]), y
  end
  local xs = {}
  for k, p in ipairs(paths) do
    xs[k] = decode("image_folder", ember._read_image, p, self.channels, 0, 0)
    if k > 1 and (xs[k]:size(2) ~= xs[1]:size(2) or xs[k]:size(3) ~= xs[1]:size(3)) then
      raise(("image_folder: '%s' is %dx%d but '%s' is %dx%d; give {size = {h, w}} to " ..
             "batch images of different sizes"):format(paths[1], xs[1]:size(2), xs[1]:size(3),
             p, xs[k]:size(2), xs[k]:size(3)))
    end
  end
  if #xs == 0 then
    return ember.empty({0, self.channels, 0, 0}), y
  end
  return ember.stack(xs), y
end

-- The worker's decode team for the loader's prefetch: one thread, so the
-- step on the caller's thread keeps the other cores (bench/NOTES.md,
-- "Image folders through the prefetch": a team of its own was slower with
-- a step computing).  0 would give the default team.
ImageFolder._worker_threads = 1

--- The loader's prefetch hook (data.lua's prefetch_source): a C batch
-- source holding a copy of the file list and labels, so the worker decodes
-- without Lua; index (a 1-d int64 tensor, 1-based) maps the loader's rows
-- to files, as a Subset's indices do.  nil without a size: then images
-- may differ in size and ds:batch on the caller's thread checks them.
function ImageFolder._batch_source(self, index)
  if not self.size then return nil end
  return ember._image_source(self.samples, self.labels, self.channels, self.size[1],
                             self.size[2], index, ImageFolder._worker_threads)
end

--- The extensions option as a set of lower-case suffixes.
local function extensions_opt(exts)
  exts = exts == nil and DEFAULT_EXTENSIONS or exts
  if type(exts) ~= "table" or #exts == 0 then
    raise(("image_folder: extensions must be a non-empty list of strings such as " ..
           "{\".png\"}, got %s"):format(check.kind(exts)))
  end
  local set = {}
  for k, e in ipairs(exts) do
    if type(e) ~= "string" or e == "" then
      raise(("image_folder: extensions[%d] must be a non-empty string, got %s"):format(
        k, check.kind(e)))
    end
    set[#set + 1] = e:lower()
  end
  return set
end

local function has_extension(name, exts)
  local lower = name:lower()
  for _, e in ipairs(exts) do
    if #lower > #e and lower:sub(-#e) == e then return true end
  end
  return false
end

--- data.image_folder(dir, {size = {h, w}, channels = 3, extensions = {...}})
function image.image_folder(dir, opts)
  check_path("image_folder", dir)
  opts = check.options("image_folder", opts, {size = true, channels = true, extensions = true}, 2)
  local h, w = size_opt("image_folder", opts.size)
  local c = channels_opt("image_folder", opts.channels)
  local exts = extensions_opt(opts.extensions)
  local names, dirs = ember._listdir(dir)
  if not names then
    raise(("image_folder: cannot read the directory '%s': %s"):format(dir, dirs))
  end
  local classes, samples, labels = {}, {}, {}
  for _, name in ipairs(names) do
    if dirs[name] then
      classes[#classes + 1] = name
      local sub = dir .. "/" .. name
      local files, subdirs = ember._listdir(sub)
      if not files then
        raise(("image_folder: cannot read the directory '%s': %s"):format(sub, subdirs))
      end
      local count = 0
      for _, f in ipairs(files) do
        if not subdirs[f] and has_extension(f, exts) then
          samples[#samples + 1] = sub .. "/" .. f
          labels[#labels + 1] = #classes
          count = count + 1
        end
      end
      if count == 0 then
        raise(("image_folder: the class folder '%s' has no images (files ending in %s)"):format(
          sub, table.concat(exts, ", ")))
      end
    end
  end
  if #classes == 0 then
    raise(("image_folder: '%s' has no class folders (expected one subfolder of images " ..
           "per class)"):format(dir))
  end
  return setmetatable({
    classes = classes, samples = samples, labels = labels, channels = c,
    size = h and {h, w} or nil,
  }, ImageFolder)
end

-- }======================================================================

-- {======================================================================
-- write_image
-- =======================================================================

local PNG_MAX_SIDE = 16384   -- ember._png_encode's limit (bindings/lua_io.c)
local WRITE_DTYPES = {float16 = true, bfloat16 = true, float32 = true, float64 = true,
                      uint8 = true}

--- x as a contiguous CPU uint8 H x W x C tensor, and C: floats are scaled
-- from [0, 1] as torchvision's save_image does (x * 255 + 0.5, clamped,
-- floored), uint8 is taken as it is.
local function png_pixels(x)
  if not ember.is_tensor(x) then
    raise(("write_image: x must be a tensor, got %s"):format(check.kind(x)))
  end
  if not WRITE_DTYPES[x.dtype] then
    raise(("write_image: x must be a float tensor (values in [0, 1]) or uint8, got %s"):format(
      x.dtype))
  end
  local d = x:dim()
  if d ~= 2 and d ~= 3 then
    raise(("write_image: x must be C x H x W (C = 1 or 3) or H x W, got %d dimensions (%s)"):format(
      d, table.concat(x:size(), "x")))
  end
  if d == 3 and x:size(1) ~= 1 and x:size(1) ~= 3 then
    raise(("write_image: x has %d channels (dim 1), expected 1 (grey) or 3 (RGB)"):format(
      x:size(1)))
  end
  local h, w = x:size(d - 1), x:size(d)
  if h < 1 or w < 1 or h > PNG_MAX_SIDE or w > PNG_MAX_SIDE then
    raise(("write_image: an image of %dx%d cannot be written (sides 1 to %d)"):format(
      h, w, PNG_MAX_SIDE))
  end
  x = x:detach():to("cpu")
  if x.dtype ~= "uint8" then
    -- NaN has no pixel value: refuse it rather than write an arbitrary one
    if x:isnan():any():item() then
      raise("write_image: x holds NaN")
    end
    x = (x:to("float32"):clamp(0, 1) * 255 + 0.5):floor():to("uint8")
  end
  if d == 2 then return x:contiguous(), 1 end
  return x:permute(2, 3, 1):contiguous(), x:size(1)
end

--- data.write_image(path, x [, {compression = 6}]) -> path
function image.write_image(path, x, opts)
  check_path("write_image", path)
  opts = check.options("write_image", opts, {compression = true}, raise)
  local level = 6
  if opts.compression ~= nil then
    level = check.integer("write_image", "compression", opts.compression, 0, raise)
    if level > 9 then
      raise(("write_image: compression must be 0 to 9, got %d"):format(level))
    end
  end
  local px, c = png_pixels(x)
  files.write_atomic("write_image", path,
                    ember._png_encode(px:size(2), px:size(1), px, c, level), raise)
  return path
end

-- }======================================================================

return image
