--- Embedding: a lookup table of num_embeddings rows of embedding_dim.
-- Indices are 1-based int64 (or int32).  weight ~ N(0, 1); the padding_idx
-- row (1-based; negative counts from the end) starts at zero and gets no
-- gradient.
local ember = require "ember"
local common = require "ember.nn.common"
local Module = require "ember.nn.module"
local F = require "ember.nn.functional"
local init = require "ember.nn.initializers"

local Embedding = Module:extend("Embedding")

function Embedding:init(num_embeddings, embedding_dim, opts)
  self.num_embeddings = common.check_int("Embedding", num_embeddings, "num_embeddings", 1, 3)
  self.embedding_dim = common.check_int("Embedding", embedding_dim, "embedding_dim", 1, 3)
  opts = common.options("Embedding", opts, {padding_idx = true, dtype = true}, 3)
  local p = opts.padding_idx
  if p ~= nil then
    p = common.check_int("Embedding", p, "padding_idx", -num_embeddings, 3)
    if p < 0 then p = num_embeddings + 1 + p end
    if p < 1 or p > num_embeddings then
      error(("Embedding: padding_idx must be within 1..%d (or negative from the end), got %d")
            :format(num_embeddings, opts.padding_idx), 3)
    end
  end
  self.padding_idx = p
  local w = ember.empty(num_embeddings, embedding_dim, {dtype = opts.dtype or "float32"})
  self:register_parameter("weight", w)
  self:reset_parameters()
end

function Embedding:reset_parameters()
  init.normal_(self.weight)
  if self.padding_idx then
    common.no_grad(function() self.weight[self.padding_idx]:zero_() end)
  end
end

function Embedding:forward(idx) return F.embedding(idx, self.weight, self.padding_idx) end

function Embedding:extra_repr()
  local s = ("%d, %d"):format(self.num_embeddings, self.embedding_dim)
  if self.padding_idx then s = s .. ", padding_idx=" .. self.padding_idx end
  return s
end

return {Embedding = Embedding}
