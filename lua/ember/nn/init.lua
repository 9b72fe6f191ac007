--- ember.nn: layers, containers, losses, initialisation and functional
-- forms, in the manner of torch.nn.  Reference: docs/nn.md.
--
-- Each layer is a class derived from nn.Module (lua/ember/nn/module.lua);
-- the math lives in nn.functional, written with differentiable ember ops.
local nn = {}

nn.Module = require "ember.nn.module"
nn.functional = require "ember.nn.functional"
nn.F = nn.functional
nn.init = require "ember.nn.initializers"
nn.utils = require "ember.nn.utils"

for _, file in ipairs{"containers", "linear", "conv", "pooling", "activation",
                      "normalization", "dropout", "embedding", "loss", "parallel",
                      "rnn", "transformer", "checkpoint"} do
  for name, class in pairs(require("ember.nn." .. file)) do
    if not name:match("^_") and type(class) == "table" then nn[name] = class end
  end
end

-- Model files and architectures: model:save(path), nn.load(path),
-- nn.from_config(m:get_config()).
local serialize = require "ember.nn.serialize"
nn.load = serialize.load
nn.from_config = serialize.from_config

return nn
