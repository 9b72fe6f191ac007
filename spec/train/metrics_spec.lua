-- ember.metrics (lua/ember/metrics.lua) against scikit-learn
-- (spec/reference/metrics_values.lua, written by
-- spec/reference/make_metrics_reference.py), and the stateful path that
-- fit and evaluate use for these names: whole-set values, never means of
-- batches.
local ember = require "ember"
local nn = ember.nn
local M = ember.metrics
local ref = dofile("spec/reference/metrics_values.lua")

local AVERAGES = {"macro", "micro", "weighted", "binary"}
local FNS = {"precision", "recall", "f1"}

local function near(want, got, what)
  assert(math.abs(want - got) <= 1e-12, ("%s: want %.17g, got %.17g"):format(what, want, got))
end

--- precision / recall / f1 of every average the reference has.
local function check_prf(case, pred, target, opts)
  for _, avg in ipairs(AVERAGES) do
    local want = case.prf[avg]
    if want then
      for i, fn in ipairs(FNS) do
        local o = {average = avg}
        for k, v in pairs(opts or {}) do o[k] = v end
        near(want[i], M[fn](pred, target, o), case.name .. " " .. fn .. " " .. avg)
      end
    elseif avg == "binary" then
      assert.has_error(function() M.f1(pred, target, {average = "binary"}) end,
        ("f1: average 'binary' needs two classes, got %d (use average = \"macro\", " ..
         "\"micro\" or \"weighted\")"):format(case.num_classes))
    end
  end
end

local function matrix(t) return t:totable() end

describe("ember.metrics against scikit-learn", function()
  for _, case in ipairs(ref.multiclass) do
    it("multiclass scores: " .. case.name, function()
      for _, dtype in ipairs({"float64", "float32"}) do
        local p = ember.tensor(case.scores, {dtype = "float64"}):to(dtype)
        local y = ember.tensor(case.target, {dtype = "int64"})
        check_prf(case, p, y)
        -- one-hot targets, and a non-contiguous view of the scores
        check_prf(case, p, nn.functional.one_hot(y, case.num_classes):float())
        check_prf(case, p:t():contiguous():t(), y)
        local cm = M.confusion_matrix(p, y, case.num_classes)
        assert.are.equal("int64", cm.dtype)
        assert.are.same(case.confusion, matrix(cm))
        for k = 1, case.num_classes do
          near(case.top_k[tostring(k)], M.top_k_accuracy(p, y, k), case.name .. " top " .. k)
        end
      end
    end)
  end

  for _, case in ipairs(ref.binary) do
    it("binary scores: " .. case.name, function()
      for _, dtype in ipairs({"float64", "float32"}) do
        local s = ember.tensor(case.scores, {dtype = "float64"}):to(dtype)
        for _, y in ipairs({ember.tensor(case.target, {dtype = "int64"}),
                            ember.tensor(case.target):float()}) do
          check_prf(case, s, y)
          check_prf(case, s:view(-1, 1), y)
          assert.are.same(case.confusion, matrix(M.confusion_matrix(s, y)))
          if case.auc then
            near(case.auc, M.auc(s, y), case.name .. " auc")
            -- two columns: class 2's logit less class 1's orders the rows
            local two = ember.stack({ember.zeros(s:size(1), {dtype = dtype}), s}, 2)
            near(case.auc, M.auc(two, y + 1), case.name .. " auc, two columns")
          end
        end
      end
    end)
  end

  for _, case in ipairs(ref.labels) do
    it("class labels: " .. case.name, function()
      local p = ember.tensor(case.pred, {dtype = "int64"})
      local y = ember.tensor(case.target, {dtype = "int64"})
      check_prf(case, p, y)
      assert.are.same(case.confusion, matrix(M.confusion_matrix(p, y, case.num_classes)))
    end)
  end
end)

describe("ember.metrics edge cases", function()
  it("gives 0 where scikit-learn divides by zero (its zero_division default)", function()
    -- nothing predicted positive: precision 0/0 -> 0, so F1 0 too
    local s, y = ember.tensor({0.1, 0.2, 0.3}), ember.tensor({1, 0, 1})
    assert.are.equal(0, M.precision(s, y, {average = "binary"}))
    assert.are.equal(0, M.f1(s, y, {average = "binary"}))
    assert.are.equal(0, M.recall(s, y, {average = "binary"}))
    -- empty inputs
    local e, ey = ember.zeros(0, 3), ember.zeros({0}, {dtype = "int64"})
    assert.are.equal(0, M.f1(e, ey))
    assert.are.equal(0, M.top_k_accuracy(e, ey, 2))
    assert.are.same({{0, 0, 0}, {0, 0, 0}, {0, 0, 0}}, M.confusion_matrix(e, ey, 3):totable())
  end)

  it("takes the threshold and the positive class as options", function()
    local s, y = ember.tensor({-1, 0.5, 2, -0.2}), ember.tensor({0, 1, 1, 1})
    assert.are.equal(1 / 3, M.recall(s, y, {average = "binary"}))
    assert.are.equal(1, M.recall(s, y, {average = "binary", threshold = -0.5}))
    assert.are.equal(1, M.recall(s, y, {average = "binary", pos_label = 1}))
    assert.are.same({{1, 0}, {2, 1}}, M.confusion_matrix(s, y):totable())
  end)

  it("gives top-k ties to the higher class, as scikit-learn", function()
    local p = ember.tensor({{1, 1, 1}, {1, 1, 1}})
    local y = ember.tensor({1, 3}, {dtype = "int64"})
    assert.are.equal(0.5, M.top_k_accuracy(p, y, 1))
    assert.are.equal(0.5, M.top_k_accuracy(p, y, 2))
    assert.are.equal(1, M.top_k_accuracy(p, y, 3))
  end)

  it("refuses bad input with errors that name the function", function()
    local p, y = ember.randn(4, 3), ember.tensor({1, 2, 3, 1}, {dtype = "int64"})
    assert.has_error(function() M.f1(p, y, {average = "samples"}) end,
      "f1: average must be \"macro\", \"micro\", \"weighted\" or \"binary\", got 'samples'")
    assert.has_error(function() M.precision(p, y, {avg = "micro"}) end,
      "precision: unknown option 'avg'")
    assert.has_error(function() M.recall(p, ember.tensor({1, 2}, {dtype = "int64"})) end,
      "recall: target has 2 elements for 4 predictions")
    assert.has_error(function() M.f1(p, ember.tensor({1, 2, 0, 1}, {dtype = "int64"})) end,
      "f1: target 0 is not a class (classes are 1..C)")
    assert.has_error(function() M.confusion_matrix(p, y, 2) end,
      "confusion_matrix: class 3 is out of range for num_classes 2")
    assert.has_error(function() M.f1(ember.tensor({0.2, 0.7}), ember.tensor({0, 2})) end,
      "f1: binary targets must be 0 or 1")
    assert.has_error(function() M.top_k_accuracy(p, y, 0) end)
    assert.has_error(function() M.top_k_accuracy(ember.tensor({0.5}), ember.tensor({1})) end,
      "top_k_accuracy: pred must be (N, C) scores, got shape [1] float32")
    assert.has_error(function() M.auc(ember.tensor({0.1, 0.9}), ember.tensor({1, 1})) end,
      "auc: only one class present in the targets; ROC AUC is not defined then")
    assert.has_error(function() M.auc(p, y) end,
      "auc: pred must be binary scores (N), (N, 1) or (N, 2), got shape [4,3] float32")
    assert.has_error(function() M.f1("x", y) end, "f1: pred must be a tensor, got string")
  end)

  it("makes stateful metrics that add batches up to the whole set's value", function()
    local case = ref.multiclass[1]
    local p = ember.tensor(case.scores)
    local y = ember.tensor(case.target, {dtype = "int64"})
    for _, avg in ipairs({"macro", "micro", "weighted"}) do
      local m = M.f1{average = avg}
      assert.are.equal(avg == "macro" and "f1" or "f1_" .. avg, m.name)
      for start = 1, 40, 7 do
        local len = math.min(7, 41 - start)
        m:update(p:narrow(1, start, len), y:narrow(1, start, len))
      end
      near(case.prf[avg][3], m:result(), "stateful f1 " .. avg)
      m:reset()
      assert.are.equal(0, m:result())
    end
    local top = M.top_k_accuracy{k = 2}
    top:update(p:narrow(1, 1, 13), y:narrow(1, 1, 13))
    top:update(p:narrow(1, 14, 27), y:narrow(1, 14, 27))
    near(case.top_k["2"], top:result(), "stateful top 2")
    local auc = M.auc{}
    local b = ref.binary[1]
    local s, t = ember.tensor(b.scores, {dtype = "float64"}), ember.tensor(b.target)
    auc:update(s:narrow(1, 1, 2), t:narrow(1, 1, 2))
    assert.is_true(auc:result() ~= auc:result())   -- one class so far: nan
    auc:update(s:narrow(1, 3, 28), t:narrow(1, 3, 28))
    near(b.auc, auc:result(), "stateful auc")
    assert.has_error(function() M.f1({average = "micro"}, y) end,
      "f1: pred must be a tensor, got table")
    assert.has_error(function() M.f1{average = "micro", nmae = "x"} end,
      "f1: unknown option 'nmae'; did you mean 'name'?")
    assert.are.equal("top_1_accuracy", M.top_k_accuracy{k = 1}.name)
    assert.are.equal("my_auc", M.auc{name = "my_auc"}.name)
  end)
end)

describe("metrics in compile, fit and evaluate", function()
  --- 3-class data where a small model is right about half the time.
  local function data(n)
    ember.manual_seed(3)
    local x = ember.randn(n, 4)
    local y = (x:select(2, 1):gt(0):long() + x:select(2, 2):gt(0.5):long()) + 1
    return x, y
  end

  it("computes precision, recall, f1, top-k over the whole set, not per batch", function()
    local x, y = data(61)
    ember.manual_seed(1)
    local model = nn.Sequential{nn.Linear(4, 3)}
    model:compile{optimizer = "sgd", loss = "sparse_categorical_crossentropy",
                  metrics = {"accuracy", "precision", "recall", "f1", "top_k_accuracy",
                             M.f1{average = "weighted"}, M.top_k_accuracy{k = 1}}}
    local logs = model:evaluate(x, y, {batch_size = 8, return_dict = true})
    local p = model:predict(x)
    for _, name in ipairs({"precision", "recall", "f1"}) do
      near(M[name](p, y), logs[name], name)
    end
    near(M.f1(p, y, {average = "weighted"}), logs.f1_weighted, "f1_weighted")
    near(M.top_k_accuracy(p, y, 5), logs.top_k_accuracy, "top_k_accuracy")
    near(M.top_k_accuracy(p, y, 1), logs.top_1_accuracy, "top_1_accuracy")
    -- the mean of the batches' F1 is another number
    local mean = 0
    for start = 1, 61, 8 do
      local len = math.min(8, 62 - start)
      mean = mean + M.f1(p:narrow(1, start, len), y:narrow(1, start, len)) * len / 61
    end
    assert.is_true(math.abs(mean - logs.f1) > 1e-3)
    -- fit: the epoch's value over every batch it saw (weights frozen by lr 0)
    model.optimizer.param_groups[1].lr = 0
    local h = model:fit(x, y, {epochs = 2, batch_size = 8, shuffle = false, verbose = 0,
                               validation_data = {x, y}})
    for _, name in ipairs({"precision", "recall", "f1", "f1_weighted"}) do
      near(logs[name], h.history[name][2], "fit " .. name)
      near(logs[name], h.history["val_" .. name][2], "fit val_" .. name)
    end
    assert.are.same({"accuracy", "precision", "recall", "f1", "top_k_accuracy", "f1_weighted",
                     "top_1_accuracy"},
                    model.compiled_metrics)
  end)

  it("computes AUC over the whole set with a binary loss (logits: threshold 0)", function()
    local x, y = data(50)
    y = y:gt(1):float():view(-1, 1)
    ember.manual_seed(2)
    local model = nn.Sequential{nn.Linear(4, 1)}
    model:compile{optimizer = "sgd", loss = "binary_crossentropy",
                  metrics = {"auc", "precision", "binary_accuracy"}}
    local logs = model:evaluate(x, y, {batch_size = 7, return_dict = true})
    local s = model:predict(x)
    near(M.auc(s, y), logs.auc, "auc")
    near(M.precision(s, y, {threshold = 0}), logs.precision, "precision at logit 0")
    local seen = {}
    model.optimizer.param_groups[1].lr = 0
    local h = model:fit(x, y, {epochs = 1, batch_size = 7, verbose = 0, callbacks = {
      {on_train_batch_end = function(_, logs_b) seen[#seen + 1] = logs_b.auc end}}})
    assert.are.equal(0, #seen)   -- AUC sorts every score: once, at the epoch's end
    near(logs.auc, h.history.auc[1], "fit auc")
  end)

  it("blames the user's line for a metric's error inside evaluate", function()
    local x, y = data(10)
    local model = nn.Sequential{nn.Linear(4, 3)}
    model:compile{optimizer = "sgd", loss = "sparse_categorical_crossentropy", metrics = {"auc"}}
    local ok, err = pcall(function() model:evaluate(x, y) end)
    assert.is_false(ok)
    assert.matches("^spec/train/metrics_spec%.lua:%d+: auc: pred must be binary scores", err)
  end)

  it("refuses an unknown metric name, listing the new ones", function()
    local model = nn.Sequential{nn.Linear(4, 3)}
    assert.has_error(function()
      model:compile{optimizer = "sgd", loss = "mse", metrics = {"f2"}}
    end, "compile: unknown metric 'f2' (known: accuracy, sparse_categorical_accuracy, " ..
         "categorical_accuracy, binary_accuracy, mse, mae, precision, recall, f1, " ..
         "top_k_accuracy, auc, an ember.metrics metric or a function)")
    assert.has_error(function()
      model:compile{optimizer = "sgd", loss = "mse", metrics = {"f1"}}
    end, "compile: 'f1' needs a classification loss")
  end)
end)
