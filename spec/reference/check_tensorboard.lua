-- Writes a small training run with callbacks.TensorBoard into the folder arg[1],
-- for spec/reference/check_tensorboard.py to read with TensorBoard itself.
local ember = require "ember"
local nn, cb = ember.nn, ember.callbacks
ember.manual_seed(1)
local x, y = ember.randn(96, 2), ember.randint(1, 3, {96})
local m = nn.Sequential{nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3)}
m:compile{optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = {"accuracy"}}
m:fit(x, y, {epochs = 3, batch_size = 16, verbose = 0, validation_split = 0.25,
  callbacks = {cb.TensorBoard(arg[1], {update_freq = 2, histogram_freq = 1, hparams = {units = 8, act = "relu"}})}})
