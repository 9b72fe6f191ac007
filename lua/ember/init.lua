--- ember: the user-facing module.
-- The tensor type and its functions come from the C bindings (ember.core);
-- this file adds what is best written in Lua and returns the module table.
-- It reaches the core only through the functions the bindings register.
local C = require "ember.core"
local format = require "ember.format"

local ember = {}
for k, v in pairs(C) do ember[k] = v end
-- One name per function: error messages name functions by where they find
-- them in package.loaded, and "ember.zeros" is the name users know.
package.loaded["ember.core"] = nil

--- The method table of tensors, as torch.Tensor: functions added here
-- become methods of every tensor (t:myfn()).
ember.Tensor = C._methods
C._tensor_mt.__tostring = function(t)
  if not C.is_tensor(t) then return "tensor(closed)" end
  return format.tostring(t)
end
ember.set_printoptions = format.set_printoptions

--- CUDA lives in a separately built plugin (libember_cuda.so, core/cuda/),
-- loaded on first use.  ember.cuda is a table of device functions that is
-- also callable as the method's module form: ember.cuda(t) is t:cuda().
ember.cuda = setmetatable({}, {__call = function(_, t, ...) return C.cuda(t, ...) end})
for k, f in pairs(C._cuda) do ember.cuda[k] = f end
ember._cuda = nil
--- One generator serves both devices (Philox: a draw on the GPU gives the
-- numbers the same draw on the CPU would), so seeding it is manual_seed.
ember.cuda.manual_seed = C.manual_seed

--- Run fn(...) with autograd recording set to `on`, then restore the
-- previous mode (also when fn raises an error); returns fn's results.
local function with_grad_mode(name, on, fn, ...)
  if type(fn) ~= "function" then
    error(("%s: expected a function, got %s"):format(name, type(fn)), 3)
  end
  local prev = C.is_grad_enabled()
  C.set_grad_enabled(on)
  local r = table.pack(pcall(fn, ...))
  C.set_grad_enabled(prev)
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

--- ember.no_grad(fn, ...): fn's results, computed without recording.
function ember.no_grad(fn, ...) return with_grad_mode("no_grad", false, fn, ...) end
--- ember.enable_grad(fn, ...): fn's results, recorded even inside no_grad.
function ember.enable_grad(fn, ...) return with_grad_mode("enable_grad", true, fn, ...) end

--- ember.autocast(dtype, fn, ...): fn's results, computed with the products
-- (matmul, linear, conv2d, attention) in dtype ("bf16"/"bfloat16" or
-- "half"/"float16") and float32 accumulation (fn may be a module, called
-- with the arguments); dtype false turns autocast
-- off inside fn.  The previous setting comes back when fn returns or
-- raises.  See docs/lua-api.md for which op runs in which dtype.
function ember.autocast(dtype, fn, ...)
  if dtype ~= false and type(dtype) ~= "string" then
    error(("autocast: expected a dtype name or false, got %s"):format(type(dtype)), 2)
  end
  local mt = type(fn) == "table" and getmetatable(fn)
  if type(fn) ~= "function" and not (type(mt) == "table" and mt.__call) then
    error(("autocast: expected a function (or a module), got %s"):format(type(fn)), 2)
  end
  local ok, prev = pcall(C._set_autocast, dtype)
  if not ok then error(prev, 2) end
  local r = table.pack(pcall(fn, ...))
  C._set_autocast(prev)
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

--- ember.is_autocast_enabled(): whether the products run under autocast.
function ember.is_autocast_enabled() return C.get_autocast_dtype() ~= false end

-- The library's Lua modules require "ember" themselves: publish the table
-- before loading them.
package.loaded.ember = ember
require "ember.logic"   -- any, all, isnan, logical_and, ... (functions and methods)
ember.distributed = require "ember.distributed"
ember._dist = nil
require "ember.warnings"  -- ember.warnings (enabled, sink); argmax/softmax over a model's batch warn once
ember.nn = require "ember.nn"
ember.optim = require "ember.optim"
require "ember.joining"   -- split, chunk, unbind, flip, roll, tile, repeat_interleave
require "ember.linalg"    -- norm, cdist, normalize, mm, bmm, outer, baddbmm, diag, trace, einsum
require "ember.mathops"   -- frac, clamp with tensor bounds, lerp, logsumexp
require "ember.encoding"  -- one_hot (nn.functional), bincount, histc, bucketize, searchsorted
require "ember.sampling"  -- bernoulli, bernoulli_ (multinomial, Generator: bindings)
require "ember.sorting"   -- unique (sort, argsort, topk, kthvalue, median are C functions)
require "ember.autograd"  -- autograd.Function, checkpoint
ember.data = require "ember.data"
ember.callbacks = require "ember.callbacks"
require "ember.train"   -- compile, fit, evaluate, predict, summary on nn.Module
require "ember.help"    -- help(x): the docs compiled in

return ember
