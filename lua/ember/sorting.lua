--- ember.sorting: unique, composed in Lua on the core's sort.
-- sort, argsort, topk, kthvalue and median are C functions (core/ops/sort.c,
-- bindings/lua_ops.c); unique is built from them and the index ops:
--
--   sorted, order = flat:sort()            -- stable, NaN last
--   starts        = first element, or different from the one before
--   group         = cumsum(starts)         -- 1-based group of each element
--   counts        = group sizes (scatter_add_ of ones)
--   output        = sorted at each group's last position (cumsum(counts))
--   inverse       = group scattered back to the original positions
--
-- So a NaN (different from everything, itself included) is a group of its
-- own, after every number, as PyTorch means it (torch 1.13's CPU kernel
-- misplaces them; Ember does not follow that).  The number of groups is
-- read back to size the output (a wait on a GPU, as in PyTorch).  Nothing
-- is recorded: unique is not differentiable.
local ember = require "ember"
local check = require "ember.check"
local blame = require "ember.blame"

local fail = blame.failer("ember/sorting.lua")
local M = {}

local KNOWN = {"sorted", "return_inverse", "return_counts", "dim"}

--- t:unique([opts]) -> output [, inverse] [, counts]: the distinct values
-- of t, ascending (always sorted: sorted = false is accepted).
-- opts.return_inverse: also the 1-based group of each element (int64,
-- t's shape); opts.return_counts: also each value's count (int64).
function M.unique(t, opts)
  if not ember.is_tensor(t) then
    fail(("unique: expected a tensor as argument 1, got %s"):format(check.type_name(t)))
  end
  opts = check.options("unique", opts, KNOWN, fail)
  check.boolean("unique", "sorted", opts.sorted, fail)
  check.boolean("unique", "return_inverse", opts.return_inverse, fail)
  check.boolean("unique", "return_counts", opts.return_counts, fail)
  if opts.dim ~= nil then
    fail("unique: the dim option is not supported (unique over all elements only)")
  end
  return ember.no_grad(function()
    local n = t:numel()
    local flat = t:reshape(n)
    local output, inverse, counts
    if n == 0 then
      output = flat:clone()
      inverse = ember.zeros(t:shape(), {dtype = "int64", device = t.device})
      counts = ember.zeros(0, {dtype = "int64", device = t.device})
    else
      local sorted, order = flat:sort()
      local starts = ember.ones(1, {dtype = "int64", device = t.device})
      if n > 1 then
        local diff = sorted:narrow(1, 2, n - 1):ne(sorted:narrow(1, 1, n - 1))
        starts = ember.cat({starts, diff:long()}, 1)
      end
      local group = starts:cumsum(1)
      local m = group[n]            -- the number of groups
      counts = ember.zeros(m, {dtype = "int64", device = t.device})
      counts:scatter_add_(1, group, ember.ones(n, {dtype = "int64", device = t.device}))
      output = sorted:index_select(1, counts:cumsum(1))
      inverse = ember.zeros(n, {dtype = "int64", device = t.device})
      inverse:scatter_add_(1, order, group)
      inverse = inverse:reshape(t:shape())
    end
    if opts.return_inverse and opts.return_counts then return output, inverse, counts end
    if opts.return_inverse then return output, inverse end
    if opts.return_counts then return output, counts end
    return output
  end)
end

ember.unique = M.unique
ember.Tensor.unique = M.unique

return true
