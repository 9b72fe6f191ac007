--- ember.train: Keras-style training for every nn.Module -- compile, fit,
-- evaluate, predict and summary, installed as Module methods.
--
--   model:compile{optimizer = "adam", loss = "sparse_categorical_crossentropy",
--                 metrics = {"accuracy"}}
--   local history = model:fit(x, y, {epochs = 5, validation_split = 0.1})
--   local loss, acc = model:evaluate(x_test, y_test)
--
-- The loop is the one a PyTorch user writes (zero_grad, forward, loss,
-- backward, step); these files add batching, shuffling, validation,
-- metrics averaged over the epoch, callbacks and the progress display.
--
-- The parts, one file each under lua/ember/train/ (each puts its methods
-- on nn.Module when it is loaded):
--   compile.lua   model:compile and the Keras names of optimizers, losses
--                 and metrics
--   fit.lua       fit, evaluate, predict (batches from ember.data.loader),
--                 callbacks, the distributed form
--   progress.lua  the progress display
--   summary.lua   model:summary
--   plot.lua      history:plot, the curves as a PNG
--   common.lua    what they share: option checks, samples, batches
require "ember.train.compile"
local fit = require "ember.train.fit"
local progress = require "ember.train.progress"
require "ember.train.summary"
require "ember.train.plot"

local M = {}
M.History = fit.History
M._format_time, M._format_step = progress.format_time, progress.format_step   -- for the specs
return M
