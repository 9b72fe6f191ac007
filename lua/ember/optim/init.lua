--- ember.optim: optimizers and learning-rate schedulers.
local optim = {}
return optim
