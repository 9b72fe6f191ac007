--- ember.joining: splitting and repeating tensors (issue 17's "splitting and
-- joining" group): split, chunk, unbind, flip, roll, tile, repeat_interleave.
-- Every function is composed of the core's views and copies (narrow,
-- select, index_select, cat, expand, reshape), so it runs on every device
-- those run on and autograd comes from them.  Semantics follow PyTorch,
-- with Ember's 1-based dimensions.  ember.stack and ember.cat stay in the
-- C bindings.
local ember = require "ember"
local check = require "ember.check"

local M = {}

-- {====== argument checks ======

local function check_tensor(name, t)
  if not ember.is_tensor(t) then
    error(("%s: expected a tensor as argument 1, got %s"):format(name, type(t)), 3)
  end
end

local wrap_dim = check.dim   -- 1-based, negative from the end

local function need_dims(name, t)
  if t:dim() == 0 then
    error(("%s: expected a tensor with at least 1 dimension, got a 0-d tensor"):format(name), 3)
  end
end

--- An integer count, checked.
local function check_int(name, what, v, min)
  if math.type(v) ~= "integer" then
    if math.type(v) == "float" and v == math.floor(v) and v >= -2^53 and v <= 2^53 then
      v = math.tointeger(v)
    else
      error(("%s: %s must be an integer, got %s"):format(name, what, tostring(v)), 3)
    end
  end
  if v < min then
    error(("%s: %s must be >= %d, got %d"):format(name, what, min, v), 3)
  end
  return v
end

--- An int64 index tensor on t's device, from a Lua list of 1-based
-- positions or from a CPU int64 tensor.
local function index_on(t, list)
  local idx = list
  if not ember.is_tensor(idx) then
    idx = #list > 0 and ember.tensor(list, {dtype = "int64"}) or ember.zeros(0, {dtype = "int64"})
  end
  if t.device ~= "cpu" then idx = idx:to(t.device) end
  return idx
end

--- 1..n, each repeated r times in a row (inner) or the whole run r times
-- (outer), as an int64 tensor built by the core (no Lua loop over r*n).
local function repeated_range(n, r, inner)
  local a = ember.arange(1, n + 1, {dtype = "int64"})
  if inner then return a:view(n, 1):expand(n, r):reshape(-1) end
  return a:view(1, n):expand(r, n):reshape(-1)
end

--- A number or a table of numbers as a list; `name` for errors.
local function as_list(name, what, v)
  if type(v) == "table" then
    local out = {}
    for i = 1, #v do out[i] = v[i] end
    return out
  end
  if type(v) ~= "number" then
    error(("%s: %s must be a number or a table of numbers, got %s"):format(name, what, type(v)), 3)
  end
  return {v}
end

-- }======

-- {====== split, chunk, unbind: views ======

--- t:split(size_or_sizes [, dim]): views along dim (default 1).  An integer
-- size gives pieces of that size and a smaller last one; a table of sizes
-- (each >= 0) must sum to the dimension's size.
function M.split(t, sizes, dim)
  check_tensor("split", t)
  need_dims("split", t)
  local d = wrap_dim("split", dim == nil and 1 or dim, t:dim())
  local n = t:size(d)
  local out = {}
  if type(sizes) == "table" then
    local start, total = 1, 0
    for i = 1, #sizes do
      total = total + check_int("split", ("size %d"):format(i), sizes[i], 0)
    end
    if total ~= n or #sizes == 0 then
      error(("split: sizes must sum to the size of dimension %d (%d), got %d")
            :format(d, n, total), 2)
    end
    for i = 1, #sizes do
      out[i] = t:narrow(d, start, math.tointeger(sizes[i]))
      start = start + sizes[i]
    end
    return out
  end
  if type(sizes) ~= "number" then
    error(("split: expected a size or a table of sizes, got %s"):format(type(sizes)), 2)
  end
  local size = check_int("split", "split size", sizes, 1)
  if n == 0 then return {t:narrow(d, 1, 0)} end
  for start = 1, n, size do
    out[#out + 1] = t:narrow(d, start, math.min(size, n - start + 1))
  end
  return out
end

--- t:chunk(n [, dim]): at most n views of ceil(size / n) elements along dim
-- (the last smaller; fewer than n pieces when the size runs out, as
-- PyTorch); a dimension of size 0 gives n empty views.
function M.chunk(t, chunks, dim)
  check_tensor("chunk", t)
  need_dims("chunk", t)
  local c = check_int("chunk", "the number of chunks", chunks, 1)
  local d = wrap_dim("chunk", dim == nil and 1 or dim, t:dim())
  local n = t:size(d)
  if n == 0 then
    if c > 1 << 20 then
      error(("chunk: at most %d chunks of an empty dimension, got %d"):format(1 << 20, c), 2)
    end
    local out = {}
    for i = 1, c do out[i] = t:narrow(d, 1, 0) end
    return out
  end
  return M.split(t, (n + c - 1) // c, d)
end

--- t:unbind([dim]): the views t:select(dim, i) for every i.
function M.unbind(t, dim)
  check_tensor("unbind", t)
  need_dims("unbind", t)
  local d = wrap_dim("unbind", dim == nil and 1 or dim, t:dim())
  local out = {}
  for i = 1, t:size(d) do out[i] = t:select(d, i) end
  return out
end

-- }======

-- {====== flip, roll: copies ======

--- A list of distinct wrapped dims from a number or a table.
local function dim_list(name, dims, ndim)
  local list, seen = as_list(name, "dims", dims), {}
  for i, d in ipairs(list) do
    list[i] = wrap_dim(name, d, ndim)
    if seen[list[i]] then
      error(("%s: dimension %d appears more than once"):format(name, list[i]), 3)
    end
    seen[list[i]] = true
  end
  return list
end

--- t:flip(dims): a copy with the order of the elements along each of dims
-- (a dim or a table of dims) reversed.
function M.flip(t, dims)
  check_tensor("flip", t)
  if dims == nil then error("flip: expected a dimension or a table of dimensions", 2) end
  local out = t
  for _, d in ipairs(dim_list("flip", dims, t:dim())) do
    local n = t:dim() > 0 and t:size(d) or 1
    if n > 1 then
      out = out:index_select(d, index_on(t, ember.arange(n, 0, -1, {dtype = "int64"})))
    end
  end
  return out == t and t:clone() or out
end

--- t:roll(shifts [, dims]): a copy with the elements shifted along each dim
-- (shifts and dims: numbers or tables of the same length), wrapping around;
-- without dims the flattened tensor is rolled and the shape restored.
function M.roll(t, shifts, dims)
  check_tensor("roll", t)
  local s = as_list("roll", "shifts", shifts)
  if dims == nil then
    if #s ~= 1 then
      error(("roll: without dims, expected one shift, got %d"):format(#s), 2)
    end
    return M.roll(t:reshape(-1), s[1], 1):view(t:shape())
  end
  local ds = as_list("roll", "dims", dims)
  if #s ~= #ds then
    error(("roll: expected as many shifts as dims, got %d and %d"):format(#s, #ds), 2)
  end
  local out = t
  for i = 1, #ds do
    local d = wrap_dim("roll", ds[i], t:dim())
    local k = math.type(s[i]) == "integer" and s[i]
    if not k then error(("roll: shift %d must be an integer, got %s"):format(i, tostring(s[i])), 2) end
    local n = t:dim() > 0 and t:size(d) or 1
    k = n > 0 and k % n or 0
    if k ~= 0 and t:dim() > 0 then
      out = ember.cat({out:narrow(d, n - k + 1, k), out:narrow(d, 1, n - k)}, d)
    end
  end
  return out == t and t:clone() or out
end

-- }======

-- {====== tile, repeat_interleave: copies ======

--- t:tile(size...) or t:tile(sizes): PyTorch's repeat (and torch.tile): the
-- tensor repeated sizes[i] times along dim i.  More sizes than dims treats
-- t as having leading dims of size 1; fewer pads sizes with leading 1s.
function M.tile(t, ...)
  check_tensor("tile", t)
  local reps = select("#", ...) == 1 and type((...)) == "table" and {table.unpack((...))} or {...}
  for i = 1, #reps do reps[i] = check_int("tile", ("size %d"):format(i), reps[i], 0) end
  local nd = t:dim()
  if #reps > 8 then error(("tile: at most 8 sizes, got %d"):format(#reps), 2) end
  while #reps < nd do table.insert(reps, 1, 1) end
  local shape = t:shape()
  while #shape < #reps do table.insert(shape, 1, 1) end
  local out = t:reshape(shape)
  local any = false
  for d = 1, #reps do
    local r = reps[d]
    if r ~= 1 then
      any = true
      local sh = out:shape()
      if #sh < 8 then
        -- [.., s, ..] -> [.., 1, s, ..] expanded to [.., r, s, ..] -> [.., r*s, ..]
        local big = {}
        for i = 1, #sh do big[i] = sh[i] end
        table.insert(big, d, r)
        sh[d] = sh[d] * r
        out = out:unsqueeze(d):expand(big):reshape(sh)
      else
        out = out:index_select(d, index_on(t, repeated_range(sh[d], r, false)))
      end
    end
  end
  return any and out or out:clone()
end

--- t:repeat_interleave(n [, dim]): each element repeated n times along dim
-- (n: an integer, or an int64/int32 tensor of one count per element, or of
-- one element); without dim the flattened tensor.  With only an integer
-- tensor of counts, ember.repeat_interleave(counts) repeats 1..#counts.
function M.repeat_interleave(t, n, dim)
  check_tensor("repeat_interleave", t)
  if n == nil then
    if t:dim() ~= 1 or (t.dtype ~= "int64" and t.dtype ~= "int32") then
      error("repeat_interleave: expected the repeat count (or a 1-d int64 tensor of counts alone)", 2)
    end
    local ids = {}
    for i = 1, t:numel() do ids[i] = i end
    return M.repeat_interleave(index_on(t, ids), t, 1)
  end
  local x, d = t, nil
  if dim == nil then
    x, d = t:reshape(-1), 1
  else
    d = wrap_dim("repeat_interleave", dim, t:dim())
    if t:dim() == 0 then x = t:reshape(1) end
  end
  local size = x:size(d)
  local counts
  if ember.is_tensor(n) then
    if n.dtype ~= "int64" and n.dtype ~= "int32" then
      error(("repeat_interleave: repeats must be an int64 or int32 tensor, got %s"):format(n.dtype), 2)
    end
    if n:dim() > 1 then
      error(("repeat_interleave: repeats must be 0-d or 1-d, got %d-d"):format(n:dim()), 2)
    end
    local list = n:reshape(-1):totable()
    if #list == 1 then
      n = list[1]
    elseif #list ~= size then
      error(("repeat_interleave: repeats must have one count per element of dimension %d (%d), got %d")
            :format(d, size, #list), 2)
    else
      counts = list
    end
  end
  if not counts then
    local r = check_int("repeat_interleave", "repeats", n, 0)
    local sh = x:shape()
    if #sh < 8 then
      local big = {}
      for i = 1, #sh do big[i] = sh[i] end
      table.insert(big, d + 1, r)
      sh[d] = sh[d] * r
      local out = x:unsqueeze(d + 1):expand(big):reshape(sh)
      return r == 1 and out:clone() or out
    end
    return x:index_select(d, index_on(x, repeated_range(size, r, true)))
  end
  local total = 0
  for i, c in ipairs(counts) do
    if c < 0 then
      error(("repeat_interleave: repeats must be >= 0, got %d at position %d"):format(c, i), 2)
    end
    if c > math.maxinteger - total then
      error("repeat_interleave: the repeat counts sum past the largest integer", 2)
    end
    total = total + c
  end
  local idx
  if total <= 1 << 20 then
    idx = {}
    for i, c in ipairs(counts) do
      for _ = 1, c do idx[#idx + 1] = i end
    end
  else
    -- a long result: the core allocates (or refuses) it, Lua fills runs
    idx = ember.empty(total, {dtype = "int64"})
    local pos = 1
    for i, c in ipairs(counts) do
      if c > 0 then idx:narrow(1, pos, c):fill_(i) end
      pos = pos + c
    end
  end
  return x:index_select(d, index_on(x, idx))
end

-- }======

--- The public form of f: an error raised by a core op it calls (an
-- allocation that fails, say) is reported as this function's, without the
-- library's file and line, as the checks above report theirs.
local function public(name, f)
  return function(...)
    local r = table.pack(pcall(f, ...))
    if r[1] then return table.unpack(r, 2, r.n) end
    local msg = tostring(r[2]):gsub("^[^\n:]*joining%.lua:%d+: ", "")
    msg = msg:gsub("^bad argument #%d+ to '[%w_.]+' %((.*)%)$", "%1")
    if msg:sub(1, #name + 2) ~= name .. ": " then msg = name .. ": " .. msg end
    error(msg, 2)
  end
end

for name, f in pairs(M) do
  ember[name] = public(name, f)
  ember.Tensor[name] = ember[name]
end

return M
