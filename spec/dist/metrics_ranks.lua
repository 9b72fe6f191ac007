-- Run by spec/dist/dist_spec.lua under mpirun -np 2: the stateful metrics
-- (ember.metrics) of evaluate and of fit's validation with
-- distributed = true are the whole set's values on every rank (each rank
-- sees half the rows; the confusion counts are added up over the ranks).
-- Prints "ok <what>" lines, or raises.
local ember = require "ember"
local nn, M = ember.nn, ember.metrics
ember.manual_seed(3)
local x = ember.randn(41, 4)
local y = (x:select(2, 1):gt(0):long() + x:select(2, 2):gt(0.5):long()) + 1
ember.manual_seed(1)
local model = nn.Sequential{nn.Linear(4, 3)}
model:compile{optimizer = "sgd", loss = "sparse_categorical_crossentropy", distributed = true,
              metrics = {"f1", "precision", M.recall{average = "weighted"}, M.top_k_accuracy{k = 1}}}
local rank = ember.distributed.rank()
local function same(a, b, what)
  assert(math.abs(a - b) <= 1e-12, ("rank %d %s: %.17g vs %.17g"):format(rank, what, a, b))
end
local h = model:fit(x, y, {epochs = 1, batch_size = 4, verbose = 0, validation_data = {x, y}})
local p = model:predict(x)
same(M.f1(p, y), h.history.val_f1[1], "fit val_f1")
local r = model:evaluate(x, y, {return_dict = true, batch_size = 5})
same(M.f1(p, y), r.f1, "evaluate f1")
same(M.precision(p, y), r.precision, "evaluate precision")
same(M.recall(p, y, {average = "weighted"}), r.recall_weighted, "evaluate recall_weighted")
same(M.top_k_accuracy(p, y, 1), r.top_1_accuracy, "evaluate top_1_accuracy")
print("ok rank " .. rank .. " whole-set metrics")
local b = nn.Sequential{nn.Linear(4, 1)}
b:compile{optimizer = "sgd", loss = "binary_crossentropy", metrics = {"auc"}, distributed = true}
local ok, err = pcall(b.evaluate, b, x, y:gt(1):float():view(-1, 1))
assert(not ok and err:find("auc: not available in distributed training yet", 1, true), err)
print("ok rank " .. rank .. " auc refused")
