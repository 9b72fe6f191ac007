--- ember.linalg: norms and linear algebra (issue 17's "norms" and "linear
-- algebra" groups): norm, cdist, normalize (nn.functional), mm, bmm, outer,
-- baddbmm, diag, trace, einsum.  Every function is composed of the core's
-- ops (matmul, mul, sum, abs, pow, max, where and views, diagonal among
-- them), so it runs on every device those run on and autograd comes from
-- them.  Semantics follow PyTorch, with Ember's 1-based dimensions.
-- t:diagonal(offset, d1, d2) itself is a core view (ember_diagonal).
local ember = require "ember"
local check = require "ember.check"

local M = {}

-- {====== argument checks ======

local function check_tensor(name, t, i)
  if not ember.is_tensor(t) then
    error(("%s: expected a tensor as argument %d, got %s"):format(name, i or 1, type(t)), 3)
  end
end

local function check_float(name, t)
  if not t:is_floating_point() then
    error(("%s: expected a floating tensor, got %s"):format(name, t.dtype), 3)
  end
end

local function check_ndim(name, t, n, what)
  if t:dim() ~= n then
    error(("%s: expected %s to be %d-d, got a %d-d tensor"):format(name, what, n, t:dim()), 3)
  end
end

local wrap_dim = check.dim   -- 1-based, negative from the end

local function shape_str(t)
  return "[" .. table.concat(t:shape(), ", ") .. "]"
end

-- }======

-- {====== norms ======

--- sqrt-like root r(s) = s^(1/p) with a zero gradient where s == 0 (as
-- PyTorch's norm backward, whose subgradient at 0 is 0): the root of s
-- where s > 0 and of 1 elsewhere, masked; where() sends no gradient to s
-- at the masked places.
local function safe_root(s, p)
  local pos = s:gt(0)
  local base = ember.where(pos, s, 1)
  local r = p == 2 and base:sqrt() or base ^ (1 / p)
  return r * pos:to(s.dtype)
end

--- Reduce x over the dims of `dims` (sorted descending, positive), keeping
-- them; f(x, d) reduces one dim with keepdim.
local function reduce_dims(x, dims, f)
  for _, d in ipairs(dims) do x = f(x, d) end
  return x
end

--- max |x| (or min) over dims, kept as size 1; the gradient is shared
-- evenly among tied elements, as PyTorch's amax: m (detached) plus the
-- mean over the ties of x - m, which is 0 in value.  Several dims are
-- merged into one first, so ties across them share evenly too.
-- With `full` (cdist's rule, as torch.cdist) every tie gets the whole
-- gradient instead.
local function extreme_norm(x, dims, is_max, full)
  local nd, red, keep, perm, kshape, rshape = x:dim(), {}, {}, {}, {}, {}
  for _, d in ipairs(dims) do red[d] = true end
  for d = 1, nd do
    if not red[d] then perm[#perm + 1] = d; kshape[#kshape + 1] = x:size(d) end
    rshape[d] = red[d] and 1 or x:size(d)
  end
  local n = 1
  for d = 1, nd do if red[d] then perm[#perm + 1] = d; n = n * x:size(d) end end
  kshape[#kshape + 1] = n
  local y = x:permute(perm):reshape(kshape)
  local m = is_max and y:max(-1, true) or y:min(-1, true)
  m = m:detach()
  local mask = y:eq(m):to(y.dtype)
  local share = full and mask or mask / mask:sum(-1, true)
  local r = m + ((y - m) * share):sum(-1, true)
  return r:reshape(rshape)
end

--- t:norm(p, dim, {keepdim = false}): the vector p-norm over dim (an
-- integer or a table of dims; nil: the whole tensor).  p = 2 by default;
-- any p > 0, 0 (the count of nonzeros), math.huge (max |x|), -math.huge
-- (min |x|).
function M.norm(t, p, dim, opts)
  check_tensor("norm", t)
  check_float("norm", t)
  if type(p) == "table" and dim == nil and opts == nil then p, opts = nil, p end
  if type(dim) == "table" and opts == nil and (dim.keepdim ~= nil) then dim, opts = nil, dim end
  p = p or 2
  if type(p) ~= "number" or p ~= p or (p < 0 and p ~= -math.huge) then
    error(("norm: p must be a number >= 0, math.huge or -math.huge, got %s"):format(tostring(p)), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("norm: options must be a table, got %s"):format(type(opts)), 2)
  end
  local keepdim = opts and opts.keepdim or false
  local nd = t:dim()
  local dims, seen = {}, {}
  if dim == nil then
    for d = 1, nd do dims[d] = d end
  else
    local list = type(dim) == "table" and dim or {dim}
    for _, d in ipairs(list) do
      local w = wrap_dim("norm", d, nd)
      if seen[w] then error(("norm: dimension %d appears twice"):format(w), 2) end
      seen[w] = true
      dims[#dims + 1] = w
    end
  end
  table.sort(dims, function(a, b) return a > b end)
  local x = t:abs()
  local r
  if nd == 0 then
    r = p == 0 and x:ne(0):to(t.dtype) or x
  elseif p == math.huge or p == -math.huge then
    for _, d in ipairs(dims) do
      if t:size(d) == 0 then
        error(("norm: the %s norm of an empty dimension (%d) is undefined")
              :format(p > 0 and "inf" or "-inf", d), 2)
      end
    end
    r = extreme_norm(x, dims, p > 0)
  elseif p == 0 then
    r = reduce_dims(x:ne(0):to(t.dtype), dims, function(y, d) return y:sum(d, true) end)
  elseif p == 1 then
    r = reduce_dims(x, dims, function(y, d) return y:sum(d, true) end)
  else
    local s = reduce_dims(p == 2 and x * x or x ^ p, dims,
                          function(y, d) return y:sum(d, true) end)
    r = safe_root(s, p)
  end
  if not keepdim and nd > 0 then
    if dim == nil then
      r = r:reshape({})
    else
      for _, d in ipairs(dims) do r = r:squeeze(d) end
    end
  end
  return r
end

--- ember.cdist(a, b, p): the p-norm distance between each row of a and
-- each row of b: [B,]P,M x [B,]R,M -> [B,]P,R (as torch.cdist; p = 2).
function M.cdist(a, b, p)
  check_tensor("cdist", a, 1)
  check_tensor("cdist", b, 2)
  check_float("cdist", a)
  check_float("cdist", b)
  if a.dtype ~= b.dtype then
    error(("cdist: a and b must have the same dtype, got %s and %s"):format(a.dtype, b.dtype), 2)
  end
  if a:dim() < 2 or a:dim() > 3 or b:dim() ~= a:dim() then
    error(("cdist: expected a and b both 2-d (P x M, R x M) or both 3-d (B x P x M, "
           .. "B x R x M), got %s and %s"):format(shape_str(a), shape_str(b)), 2)
  end
  if a:size(-1) ~= b:size(-1) then
    error(("cdist: a and b must have the same number of columns, got %s and %s")
          :format(shape_str(a), shape_str(b)), 2)
  end
  if a:dim() == 3 and a:size(1) ~= b:size(1) then
    error(("cdist: batch sizes differ, got %s and %s"):format(shape_str(a), shape_str(b)), 2)
  end
  p = p or 2
  if type(p) ~= "number" or p ~= p or p < 0 then
    error(("cdist: p must be a number >= 0 or math.huge, got %s"):format(tostring(p)), 2)
  end
  local diff = a:unsqueeze(-2) - b:unsqueeze(-3)      -- [B,]P,R,M
  if a:size(-1) == 0 then
    local sh = diff:shape()
    sh[#sh] = nil
    return ember.zeros(sh, {dtype = a.dtype, device = a.device}) + diff:sum(-1)
  end
  if p == math.huge then
    return extreme_norm(diff:abs(), {diff:dim()}, true, true):squeeze(-1)
  end
  return M.norm(diff, p, -1)
end

--- nn.functional.normalize(t, {p = 2, dim = 2, eps = 1e-12}): t divided by
-- its p-norm over dim, the norm clamped below by eps (as PyTorch).
function M.normalize(t, opts)
  check_tensor("normalize", t)
  check_float("normalize", t)
  if opts ~= nil and type(opts) ~= "table" then
    error(("normalize: options must be a table, got %s"):format(type(opts)), 2)
  end
  opts = opts or {}
  local p, dim, eps = opts.p or 2, opts.dim or 2, opts.eps or 1e-12
  if type(eps) ~= "number" or eps < 0 then
    error(("normalize: eps must be a number >= 0, got %s"):format(tostring(eps)), 2)
  end
  dim = wrap_dim("normalize", dim, t:dim())
  local n = M.norm(t, p, t:dim() == 0 and nil or dim, {keepdim = true})
  return t / n:clamp(eps, nil):expand_as(t)
end

-- }======

-- {====== products ======

--- ember.mm(a, b): the product of two matrices, n x k times k x m.
function M.mm(a, b)
  check_tensor("mm", a, 1)
  check_tensor("mm", b, 2)
  check_ndim("mm", a, 2, "a")
  check_ndim("mm", b, 2, "b")
  if a:size(2) ~= b:size(1) then
    error(("mm: a and b cannot be multiplied (%s and %s)"):format(shape_str(a), shape_str(b)), 2)
  end
  return ember.matmul(a, b)
end

--- ember.bmm(a, b): batched matrix product, B x n x k times B x k x m.
function M.bmm(a, b)
  check_tensor("bmm", a, 1)
  check_tensor("bmm", b, 2)
  check_ndim("bmm", a, 3, "a")
  check_ndim("bmm", b, 3, "b")
  if a:size(1) ~= b:size(1) then
    error(("bmm: batch sizes differ (%s and %s)"):format(shape_str(a), shape_str(b)), 2)
  end
  if a:size(3) ~= b:size(2) then
    error(("bmm: a and b cannot be multiplied (%s and %s)"):format(shape_str(a), shape_str(b)), 2)
  end
  return ember.matmul(a, b)
end

--- ember.outer(u, v): the n x m matrix u[i] * v[j].
function M.outer(u, v)
  check_tensor("outer", u, 1)
  check_tensor("outer", v, 2)
  check_ndim("outer", u, 1, "u")
  check_ndim("outer", v, 1, "v")
  return u:unsqueeze(2) * v:unsqueeze(1)
end

--- ember.baddbmm(input, b1, b2, {beta = 1, alpha = 1}): beta * input +
-- alpha * bmm(b1, b2); input broadcasts to the product's shape; beta = 0
-- ignores input (NaN in it does not propagate), as PyTorch.
function M.baddbmm(input, b1, b2, opts)
  check_tensor("baddbmm", input, 1)
  check_tensor("baddbmm", b1, 2)
  check_tensor("baddbmm", b2, 3)
  if opts ~= nil and type(opts) ~= "table" then
    error(("baddbmm: options must be a table, got %s"):format(type(opts)), 2)
  end
  opts = opts or {}
  local beta, alpha = opts.beta or 1, opts.alpha or 1
  if type(beta) ~= "number" or type(alpha) ~= "number" then
    error("baddbmm: beta and alpha must be numbers", 2)
  end
  check_ndim("baddbmm", b1, 3, "batch1")
  check_ndim("baddbmm", b2, 3, "batch2")
  if b1:size(1) ~= b2:size(1) then
    error(("baddbmm: batch sizes differ (%s and %s)"):format(shape_str(b1), shape_str(b2)), 2)
  end
  if b1:size(3) ~= b2:size(2) then
    error(("baddbmm: batch1 and batch2 cannot be multiplied (%s and %s)")
          :format(shape_str(b1), shape_str(b2)), 2)
  end
  local prod = ember.matmul(b1, b2)
  local ok, inp = pcall(input.expand, input, prod:shape())
  if not ok then
    error(("baddbmm: input of shape %s does not broadcast to the product's %s")
          :format(shape_str(input), shape_str(prod)), 2)
  end
  if alpha ~= 1 then prod = prod * alpha end
  if beta == 0 then return prod end
  return prod + (beta == 1 and inp or inp * beta)
end

--- ember.diag(t, k): a 1-d t of n values -> the (n+|k|)-square matrix with
-- t on diagonal k; a 2-d t -> a copy of its diagonal k (as torch.diag).
function M.diag(t, k)
  check_tensor("diag", t)
  k = k or 0
  if math.type(k) ~= "integer" then
    error(("diag: the diagonal offset must be an integer, got %s"):format(tostring(k)), 2)
  end
  if t:dim() == 2 then return t:diagonal(k, 1, 2):clone() end
  if t:dim() ~= 1 then
    error(("diag: expected a 1-d or 2-d tensor, got a %d-d tensor"):format(t:dim()), 2)
  end
  local n, a = t:size(1), k >= 0 and k or -k
  local opts = {dtype = t.dtype, device = t.device}
  local d = t:unsqueeze(1) * ember.eye(n, opts)     -- n x n, t on the diagonal
  if a == 0 then return d end
  if k > 0 then     -- columns shifted right, rows added below
    d = ember.cat({ember.zeros(n, a, opts), d}, 2)
    return ember.cat({d, ember.zeros(a, n + a, opts)}, 1)
  end
  d = ember.cat({ember.zeros(a, n, opts), d}, 1)
  return ember.cat({d, ember.zeros(n + a, a, opts)}, 2)
end

--- t:trace(): the sum of the main diagonal of a 2-d tensor.
function M.trace(t)
  check_tensor("trace", t)
  check_ndim("trace", t, 2, "the input")
  return t:diagonal():sum()
end

-- }======

-- {====== einsum ======
-- The equation is reduced to diagonal views, sums and batched matmul:
-- each operand first takes the diagonal of a repeated letter and sums
-- letters no one else needs; then the operands are contracted left to
-- right, two at a time, as [batch, left, contracted] x [batch,
-- contracted, right]; a final permute gives the output's order.

--- Parse one side's letters; nil on a character einsum does not accept.
local function letters(name, s)
  local out = {}
  for c in s:gmatch(".") do
    if c == "." then
      error(("%s: ellipsis ('...') is not supported"):format(name), 4)
    end
    if not c:match("%a") then
      error(("%s: invalid character '%s' in the equation (expected letters, ',' and '->')")
            :format(name, c), 4)
    end
    out[#out + 1] = c
  end
  return out
end

--- Operand x with letters ls: take diagonals of repeated letters, sum
-- the letters `keep` does not count; returns the tensor and its letters.
local function prepare(x, ls, keep)
  local i = 1
  while i <= #ls do
    local j = nil
    for q = i + 1, #ls do if ls[q] == ls[i] then j = q break end end
    if j then
      if x:size(i) ~= x:size(j) then
        error(("einsum: letter '%s' has sizes %d and %d in one operand")
              :format(ls[i], x:size(i), x:size(j)), 4)
      end
      x = x:diagonal(0, i, j)          -- the pair becomes the last dim
      local c = ls[i]
      table.remove(ls, j)
      table.remove(ls, i)
      ls[#ls + 1] = c
    else
      i = i + 1
    end
  end
  for q = #ls, 1, -1 do
    if not keep[ls[q]] then
      x = x:sum(q)
      table.remove(ls, q)
    end
  end
  return x, ls
end

local function index_of(ls)
  local ix = {}
  for i, c in ipairs(ls) do ix[c] = i end
  return ix
end

--- Contract x (letters lx) with y (letters ly), keeping the letters in
-- `need` (letters a later operand or the output uses).
local function contract(x, lx, y, ly, need, size)
  local ix, iy = index_of(lx), index_of(ly)
  local batch, left, right, sum = {}, {}, {}, {}
  for _, c in ipairs(lx) do
    if iy[c] then
      if need[c] then batch[#batch + 1] = c else sum[#sum + 1] = c end
    else
      left[#left + 1] = c
    end
  end
  for _, c in ipairs(ly) do
    if not ix[c] then right[#right + 1] = c end
  end
  local function prod(list)
    local n = 1
    for _, c in ipairs(list) do n = n * size[c] end
    return n
  end
  local function perm(ls, idx, groups)
    local p = {}
    for _, g in ipairs(groups) do
      for _, c in ipairs(g) do p[#p + 1] = idx[c] end
    end
    return #p > 0 and ls:permute(p) or ls
  end
  local nb, nl, nr, ns = prod(batch), prod(left), prod(right), prod(sum)
  local a = perm(x, ix, {batch, left, sum}):reshape(nb, nl, ns)
  local b = perm(y, iy, {batch, sum, right}):reshape(nb, ns, nr)
  local r = ember.matmul(a, b)
  local sh, out = {}, {}
  for _, g in ipairs({batch, left, right}) do
    for _, c in ipairs(g) do sh[#sh + 1] = size[c]; out[#out + 1] = c end
  end
  return r:reshape(sh), out
end

--- ember.einsum(eq, ...): Einstein summation over the operands, as
-- torch.einsum without ellipsis or broadcasting of size-1 dims.
function M.einsum(eq, ...)
  if type(eq) ~= "string" then
    error(("einsum: expected the equation as a string, got %s"):format(type(eq)), 2)
  end
  local ops = table.pack(...)
  if ops.n == 1 and type(ops[1]) == "table" and not ember.is_tensor(ops[1]) then
    ops = table.pack(table.unpack(ops[1]))
  end
  eq = eq:gsub("%s", "")
  local lhs, rhs = eq:match("^(.-)%->(.*)$")
  if not lhs then lhs = eq end
  if rhs and rhs:find("->", 1, true) then
    error("einsum: the equation has more than one '->'", 2)
  end
  local ins = {}
  for part in (lhs .. ","):gmatch("([^,]*),") do ins[#ins + 1] = letters("einsum", part) end
  if #ins ~= ops.n then
    error(("einsum: the equation names %d operand(s), %d given"):format(#ins, ops.n), 2)
  end
  local size, count = {}, {}
  for k, ls in ipairs(ins) do
    local x = ops[k]
    if not ember.is_tensor(x) then
      error(("einsum: operand %d is a %s, expected a tensor"):format(k, type(x)), 2)
    end
    if x:dim() ~= #ls then
      error(("einsum: operand %d has %d dimension(s), its subscripts '%s' name %d")
            :format(k, x:dim(), table.concat(ls), #ls), 2)
    end
    for i, c in ipairs(ls) do
      if size[c] and size[c] ~= x:size(i) then
        error(("einsum: letter '%s' has size %d and %d"):format(c, size[c], x:size(i)), 2)
      end
      size[c] = x:size(i)
      count[c] = (count[c] or 0) + 1
    end
  end
  local out
  if rhs then
    out = letters("einsum", rhs)
    local seen = {}
    for _, c in ipairs(out) do
      if seen[c] then error(("einsum: output letter '%s' appears twice"):format(c), 2) end
      if not size[c] then
        error(("einsum: output letter '%s' is not in any operand"):format(c), 2)
      end
      seen[c] = true
    end
  else            -- implicit form: the letters used once, in order
    out = {}
    for c, n in pairs(count) do if n == 1 then out[#out + 1] = c end end
    table.sort(out)
  end
  local in_out = {}
  for _, c in ipairs(out) do in_out[c] = true end
  -- needed(k): letters used by operands after k or by the output
  local function needed(k)
    local need = {}
    for c in pairs(in_out) do need[c] = true end
    for q = k + 1, #ins do for _, c in ipairs(ins[q]) do need[c] = true end end
    return need
  end
  -- each operand keeps what the output or another operand uses
  local xs, ls = {}, {}
  for k = 1, #ins do
    local keep = {}
    for c in pairs(in_out) do keep[c] = true end
    for q = 1, #ins do
      if q ~= k then for _, c in ipairs(ins[q]) do keep[c] = true end end
    end
    local copy = {}
    for i, c in ipairs(ins[k]) do copy[i] = c end
    xs[k], ls[k] = prepare(ops[k], copy, keep)
  end
  local x, lx = xs[1], ls[1]
  for k = 2, #xs do
    local need = needed(k)
    -- letters of x that y lacks and no one needs: sum them first
    local iy = index_of(ls[k])
    for q = #lx, 1, -1 do
      if not need[lx[q]] and not iy[lx[q]] then
        x = x:sum(q)
        table.remove(lx, q)
      end
    end
    x, lx = contract(x, lx, xs[k], ls[k], need, size)
  end
  -- sum what the output lacks, then order as the output
  for q = #lx, 1, -1 do
    if not in_out[lx[q]] then
      x = x:sum(q)
      table.remove(lx, q)
    end
  end
  if #out == 0 then return #lx == 0 and x or x:sum() end
  local ix, p, ident = index_of(lx), {}, true
  for i, c in ipairs(out) do p[i] = ix[c]; ident = ident and p[i] == i end
  if ident then return x end
  return x:permute(p)
end

-- }======

--- The public form of f: an error raised by a core op it calls is
-- reported as this function's, without the library's file and line.
local function public(name, f)
  return function(...)
    local r = table.pack(pcall(f, ...))
    if r[1] then return table.unpack(r, 2, r.n) end
    local msg = tostring(r[2]):gsub("^[^\n:]*linalg%.lua:%d+: ", "")
    msg = msg:gsub("^bad argument #%d+ to '[%w_.]+' %((.*)%)$", "%1")
    if msg:sub(1, #name + 2) ~= name .. ": " then msg = name .. ": " .. msg end
    error(msg, 2)
  end
end

local methods = {norm = true, mm = true, bmm = true, outer = true, baddbmm = true,
                 diag = true, trace = true}
for name, f in pairs(M) do
  if name ~= "normalize" then
    ember[name] = public(name, f)
    if methods[name] then ember.Tensor[name] = ember[name] end
  end
end
ember.nn.functional.normalize = public("normalize", M.normalize)

return M
