-- blobs.lua: the small classification set the training specs fit.
local ember = require "ember"

--- Three Gaussian blobs in 2-D: x [n,2] float32, y int64 classes 1..3,
-- drawn after manual_seed(seed or 7).
return function(n, seed)
  ember.manual_seed(seed or 7)
  local y = ember.randint(1, 3, {n})
  local centers = ember.tensor({{-2, 0}, {2, 0}, {0, 2.5}})
  return centers:index_select(1, y) + ember.randn(n, 2) * 0.6, y
end
