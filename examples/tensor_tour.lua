-- tensor_tour.lua: a short tour of Ember's tensors.
-- Run it with `./ember examples/tensor_tour.lua` (or `make run`).
local ember = ember or require "ember"

-- no options: any argument is refused (examples/lib/options.lua)
local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "examples"
dofile(here .. "/lib/options.lua")("tensor_tour.lua", arg or {}, {})

print("-- creation")
local a = ember.tensor({{1, 2}, {3, 4}})            -- float32 by default
print(a)
print(ember.zeros(2, 3), ember.full({2, 2}, 7), ember.arange(1, 6))
ember.manual_seed(42)                               -- Philox-4x32-10: reproducible
print(ember.randn(2, 3))

print("-- indexing is 1-based, views share memory")
print(a[1], a[2][1])
local row = a[1]
row[2] = 20                                         -- writes through to a
print(a)
print(a:t(), a:view(4), a:narrow(2, 2, 1))

print("-- math broadcasts and promotes like PyTorch")
local b = ember.tensor({10, 20})
print(a + b, a * 2, -a, a ^ 2)
print(ember.tensor({1, 2, 3}, {dtype = "int32"}) / 2)
print(a:gt(2), ember.where(a:gt(2), a, 0))

print("-- reductions, softmax, matmul")
print(a:sum(), a:sum(1), a:mean(2, true))
local values, indices = a:max(2)
print(values, indices)                              -- indices are 1-based
print(a:softmax(2))
print(a:matmul(ember.eye(2)), ember.ones(3, 4):matmul(ember.ones(4)))

print("-- conversions")
print(a:long(), a:totable()[2][1], a:sum():item())
print(("threads: %d"):format(ember.get_num_threads()))
