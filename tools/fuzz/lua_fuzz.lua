-- lua_fuzz.lua -- a seeded random fuzzer for Ember's Lua surface (issue 7).
--
-- It calls every public tensor function and method with random and hostile
-- arguments: wrong types, nil, NaN, +-inf, huge and negative sizes, 0-sized
-- dims, non-contiguous views, every dtype, "cuda" tensors and strings,
-- sizes whose numel overflows, 9+ dims, deeply nested tables, options
-- tables with junk keys.  The contract it checks: every call succeeds or
-- raises a Lua error (it runs under pcall); nothing crashes, hangs or makes
-- a sanitizer report, and a failed in-place call leaves its tensor as it
-- was.
--
-- The targets are enumerated at run time from the `ember` table, ember.cuda,
-- ember.metrics, ember.nn.functional and the tensor metatable (methods,
-- metamethods and fields), so a function added later is fuzzed without touching this file.
-- SKIP below lists, with reasons, the only ones left out.
--
-- Two modes, one file:
--   ember tools/fuzz/lua_fuzz.lua [--seconds N] [--batches N] [--seed S]
--         [--calls K] [--bin PATH]
--     the driver: runs batches of K calls, each in a child process (so a
--     crash or a sanitizer abort is caught, not fatal), until N seconds or
--     N batches have run; prints the iterations and the seed; on a crash it
--     replays the batch with --trace and prints the call that crashed.
--     Exit status 0 when every batch finished cleanly.
--   ember tools/fuzz/lua_fuzz.lua --child --seed S --batch B [--calls K]
--         [--trace]
--     one batch, in this process (--trace prints each call before making
--     it: the last line printed names the call that crashed).
-- Batch B of seed S is deterministic: the same calls in the same order.
-- Loaded with dofile() it returns the module table (the spec uses it).

local M = {}

-- {======================================================================
-- What is fuzzed, and what is not
-- =======================================================================

-- Functions of the `ember` table left out, with the reason.
M.SKIP = {
  load = "reads files (the file readers have their own fuzzer)",
  save = "writes files into the working folder",
  _read_idx = "reads files (the file readers have their own fuzzer)",
  _read_image = "reads files (fuzz_image.c; data.read_image is fuzzed)",
  _read_images = "reads files (fuzz_image.c; data.image_folder is fuzzed)",
  _listdir = "lists folders (data.image_folder is fuzzed)",
  set_num_threads = "resizes the process-wide thread pool: a huge count "
    .. "starts threads until the process runs out (a resource limit, "
    .. "not memory safety)",
}
-- Sub-tables of `ember` left out (everything else that is a table of
-- functions is fuzzed, like ember.cuda and ember.nn.functional).
M.SKIP_TABLES = {
  data = "data sets: reads and downloads files",
  callbacks = "the training loop's callbacks: write files (ModelCheckpoint, "
    .. "CSVLogger, TensorBoard) and drive fit",
  optim = "Lua optimizer objects over parameters: their fused C steps "
    .. "(ember._sgd_step, ...) are fuzzed directly",
  nn = "Lua module objects; their tensor functions, ember.nn.functional, "
    .. "are fuzzed",
  Tensor = "the method table: fuzzed as methods on tensors",
  _methods = "the method table: fuzzed as methods on tensors",
  _tensor_mt = "the metatable: its metamethods are fuzzed",
  warnings = "settings (enabled, sink) and no functions: the warning itself "
    .. "is raised by argmax/softmax/log_softmax, which are fuzzed",
}

-- The functions of ember.data that are fuzzed all the same: they neither
-- read nor write files (chars only with {path =}, which a random table
-- rarely holds, and reading is harmless); the tokenizer's methods are
-- fuzzed on a tokenizer of SEEDS.chars's text.
M.DATA = {"chars", "windows", "RandomCrop", "RandomHorizontalFlip", "Normalize",
          "RandomRotation", "transforms"}

M.DTYPES = {"float32", "float64", "int32", "int64", "uint8", "bool", "bfloat16", "float16"}
M.FIELDS = {"grad", "dtype", "device", "requires_grad", "is_leaf", "grad_fn",
            "data", "shape", "T", "x", ""}

-- Valid calls to start from (a fuzzer's seed corpus), for functions whose
-- arguments random draws rarely get right; the mutator then makes them
-- hostile one argument at a time.  Keyed by bare name: they seed the
-- ember.X, Tensor:X and nn.functional.X targets of that name alike.
M.SEEDS = {
  conv2d = function(e) return {e.randn(1, 2, 5, 5), e.randn(3, 2, 3, 3), e.randn(3), 1, 1, 1, 1} end,
  _conv2d_relu = function(e) return {e.randn(1, 2, 5, 5), e.randn(3, 2, 3, 3), e.randn(3), 1, 1} end,
  conv2d_backward = function(e)
    return {e.ones(2, 4, 5, 5), e.randn(2, 3, 5, 5), e.randn(4, 3, 3, 3), 1, 1, 1, 1} end,
  max_pool2d = function(e) return {e.randn(1, 2, 4, 4), 2, 2, 0, 1, false, true} end,
  max_pool2d_backward = function(e)
    local x = e.randn(1, 2, 4, 4)
    local _, idx = e.max_pool2d(x, 2, 2, 0, 1, false, true)
    return {e.ones(1, 2, 2, 2), x, idx} end,
  avg_pool2d = function(e) return {e.randn(1, 2, 5, 5), 3, 2, 1, true, false} end,
  avg_pool2d_backward = function(e) return {e.ones(2, 3, 2, 2), e.randn(2, 3, 5, 5), 2} end,
  gather = function(e) return {e.randn(2, 3), 2, e.tensor({{1}, {3}}, {dtype = "int64"})} end,
  index_select = function(e) return {e.randn(2, 3), 2, e.tensor({3, 1}, {dtype = "int64"})} end,
  _check_index = function(e) return {e.tensor({{1, 5}, {-100, 3}}, {dtype = "int64"}), 1, 5, -100, "p ", " s"} end,
  index_add_ = function(e) return {e.zeros(3), 1, e.tensor({1, 3, 1}, {dtype = "int64"}), e.ones(3)} end,
  scatter_add_ = function(e) return {e.zeros(2, 3), 2, e.tensor({{1, 3}, {2, 2}}, {dtype = "int64"}), e.ones(2, 2)} end,
  nonzero = function(e) local a = e.randn(2, 3); return {a:gt(0), {as_tuple = true}} end,
  masked_select = function(e) local a = e.randn(2, 3); return {a, a:gt(0)} end,
  masked_scatter = function(e) local a = e.randn(2, 3); return {a, e.randn(3):gt(0), e.randn(6)} end,
  masked_scatter_ = function(e) local a = e.randn(2, 3); return {a, a:gt(0), e.randn(2, 3)} end,
  take = function(e) return {e.randn(2, 3), e.tensor({{6, 1}}, {dtype = "int64"})} end,
  scatter = function(e) return {e.randn(2, 3), 2, e.tensor({{1, 3}, {2, 2}}, {dtype = "int64"}), e.randn(2, 2), {reduce = "amax"}} end,
  scatter_ = function(e) return {e.zeros(2, 3), 1, e.tensor({{2, 1, 2}}, {dtype = "int64"}), 4} end,
  index_copy_ = function(e) return {e.zeros(3, 2), 1, e.tensor({3, 1}, {dtype = "int64"}), e.ones(2, 2)} end,
  index_copy = function(e) return {e.randn(2, 3):t(), 2, e.tensor({2, 2}, {dtype = "int64"}), e.randn(3, 2)} end,
  index_fill_ = function(e) return {e.zeros(2, 3), 2, e.tensor({3, 1}, {dtype = "int64"}), -1} end,
  index_fill = function(e) return {e.randn(2, 3), -1, e.tensor({1}, {dtype = "int64"}), e.tensor(2.5)} end,
  masked_fill = function(e) local a = e.randn(2, 3); return {a, a:gt(0), -1} end,
  masked_fill_ = function(e) local a = e.randn(2, 3); return {a, a:gt(0), 7} end,
  where = function(e) local a = e.randn(2, 3); return {a:gt(0), a, e.zeros(3)} end,
  lerp = function(e) return {e.randn(2, 3), e.randn(3), e.rand(2, 1)} end,
  logsumexp = function(e) return {e.randn(2, 3), -1, {keepdim = true}} end,
  clamp = function(e) return {e.randn(2, 3), e.zeros(3), e.ones(2, 1)} end,
  erfinv = function(e) return {e.rand(4) * 2 - 1} end,
  silu = function(e) return {e.randn(2, 3) * 4} end,
  silu_ = function(e) return {e.randn(3, 2):t()} end,
  remainder = function(e) return {e.randint(-9, 9, 2, 3, {dtype = "int64"}), e.tensor({3, -2, 5}, {dtype = "int64"})} end,
  fmod = function(e) return {e.randint(-9, 9, 3, 2, {dtype = "int32"}):t(), -4} end,
  atan2 = function(e) return {e.randn(2, 3), e.randn(3)} end,
  hypot = function(e) return {e.randn(2, 1, {dtype = "float64"}), e.randn(3)} end,
  tril = function(e) return {e.randn(2, 3, 4), -1} end,
  triu = function(e) return {e.randn(4, 3):t(), 2} end,
  tril_ = function(e) return {e.ones(3, 3, {dtype = "bool"}), 1} end,
  triu_ = function(e) return {e.randn(2, 3, 3), -2} end,
  cumsum = function(e) return {e.randint(0, 5, 3, 4, {dtype = "int32"}), -1, {dtype = "float64"}} end,
  cumprod = function(e) return {e.randn(4, 3):t(), 2} end,
  cummax = function(e) return {e.randn(2, 3, 4), 2} end,
  logcumsumexp = function(e) return {e.randn(5), 1} end,
  sort = function(e) return {e.randn(3, 4):t(), 1, {descending = true}} end,
  argsort = function(e) return {e.randint(0, 3, 2, 5, {dtype = "int32"}), -1} end,
  topk = function(e) return {e.randn(4, 6), 2, 2, {largest = false}} end,
  kthvalue = function(e) return {e.randn(5, 3):t(), 3, 2, {keepdim = true}} end,
  median = function(e) return {e.randint(0, 4, 3, 5, {dtype = "int64"}), 1} end,
  unique = function(e) return {e.randint(0, 4, 3, 5), {return_inverse = true, return_counts = true}} end,
  narrow = function(e) return {e.randn(2, 3), 2, 2, 2} end,
  diagonal = function(e) return {e.randn(2, 3, 4), 1, -1, 2} end,
  norm = function(e) return {e.randn(2, 3), 3, 2, {keepdim = true}} end,
  finfo = function() return {"bf16"} end,
  is_floating_point = function(e) return {e.randn(2, 3, {dtype = "float16"})} end,
  cdist = function(e) return {e.randn(2, 3, 4), e.randn(2, 5, 4), 1} end,
  normalize = function(e) return {e.randn(2, 3), {p = 1, dim = 1}} end,
  mm = function(e) return {e.randn(2, 3), e.randn(3, 4)} end,
  bmm = function(e) return {e.randn(2, 2, 3), e.randn(2, 3, 4)} end,
  outer = function(e) return {e.randn(2), e.randn(3)} end,
  baddbmm = function(e) return {e.randn(2, 4), e.randn(3, 2, 3), e.randn(3, 3, 4), {beta = 0.5, alpha = 2}} end,
  diag = function(e) return {e.randn(3), -1} end,
  trace = function(e) return {e.randn(3, 4)} end,
  einsum = function(e) return {"bi,oij,bj->bo", e.randn(2, 3), e.randn(4, 3, 5), e.randn(2, 5)} end,
  clamp_ = function(e) return {e.randn(2, 3), -0.5, 0.5} end,
  linspace = function() return {0, 1, 5} end,
  full = function() return {{2, 3}, 7} end,
  randint = function() return {1, 10, {2, 3}} end,
  select = function(e) return {e.randn(2, 3), 2, 3} end,
  view = function(e) return {e.randn(2, 3), 3, -1} end,
  cat = function(e) return {{e.ones(2, 3), e.zeros(1, 3)}, 1} end,
  stack = function(e) return {{e.ones(2, 3), e.zeros(2, 3)}, 2} end,
  split = function(e) return {e.randn(4, 3), {1, 3}, 1} end,
  chunk = function(e) return {e.randn(4, 3), 3, 2} end,
  unbind = function(e) return {e.randn(2, 3), -1} end,
  flip = function(e) return {e.randn(2, 3), {1, 2}} end,
  roll = function(e) return {e.randn(2, 3), {1, -2}, {1, 2}} end,
  tile = function(e) return {e.randn(2, 3), {2, 1, 2}} end,
  repeat_interleave = function(e) return {e.randn(2, 3), e.tensor({2, 0, 1}, {dtype = "int64"}), 2} end,
  matmul = function(e) return {e.randn(2, 3), e.randn(3, 4)} end,
  _matmul_f32 = function(e) return {e.randn(2, 3):to("bf16"), e.randn(3, 4):to("bf16")} end,
  one_hot = function(e) return {e.tensor({2, 1, 3}, {dtype = "int64"}), 4} end,
  bincount = function(e)
    return {e.tensor({3, 1, 3}, {dtype = "int64"}), {minlength = 4, weights = e.rand(3)}} end,
  histc = function(e) return {e.randn(3, 4), 5, -1, 1} end,
  -- ember.metrics: scores (N, C) and classes 1..C; binary scores and 0/1
  precision = function(e) return {e.randn(5, 3), e.tensor({1, 3, 2, 2, 1}, {dtype = "int64"}),
                                  {average = "weighted"}} end,
  recall = function(e) return {e.rand(4), e.tensor({0, 1, 1, 0}), {average = "binary"}} end,
  f1 = function(e) return {e.tensor({3, 1, 2}, {dtype = "int64"}),
                           e.tensor({3, 2, 2}, {dtype = "int64"}), {average = "micro"}} end,
  top_k_accuracy = function(e) return {e.randn(4, 5), e.tensor({5, 1, 2, 2}, {dtype = "int64"}), 2} end,
  auc = function(e) return {e.rand(6), e.tensor({0, 1, 1, 0, 1, 0})} end,
  confusion_matrix = function(e) return {e.randn(4, 3), e.tensor({1, 3, 2, 2}, {dtype = "int64"}), 3} end,
  is_metric = function(e) return {e.metrics.f1{}} end,
  bucketize = function(e) return {e.randn(2, 3), e.tensor({-1, 0, 1}), {right = true}} end,
  searchsorted = function(e) return {e.tensor({{1, 2, 3}, {0, 5, 9}}), e.randn(2, 4), {right = false}} end,
  backward = function(e) local w = e.randn(3, {requires_grad = true}); return {(w * w):sum()} end,
  retain_grad = function(e) return {e.randn(3, {requires_grad = true}) * 2} end,
  set_rng_state = function(e) return {e.get_rng_state()} end,
  multinomial = function(e)
    return {e.rand(3, 5), 4, {replacement = true, generator = e.Generator(1)}} end,
  bernoulli = function(e) return {e.rand(2, 3), {generator = e.Generator(2)}} end,
  bernoulli_ = function(e) return {e.zeros(2, 3), e.rand(3), {generator = e.Generator(3)}} end,
  filter_top_k = function(e) return {e.randn(2, 5), 3} end,
  filter_top_p = function(e) return {e.randn(2, 5):t(), 0.7} end,
  sample_logits = function(e)
    return {e.randn(2, 6), {temperature = 0.8, top_k = 4, top_p = 0.9, generator = e.Generator(6)}} end,
  uniform_ = function(e) return {e.zeros(2, 3):t(), -1, 1, {generator = e.Generator(4)}} end,
  normal_ = function(e) return {e.zeros(4, {dtype = "float64"}), 0, 2} end,
  Generator = function() return {123} end,
  randperm = function(e) return {6, {generator = e.Generator(5)}} end,
  set_printoptions = function() return {{precision = 2, threshold = 5, edgeitems = 2}} end,
  -- help prints the docs: collected by print_fn, not into the child's output
  help = function(e) return {e.zeros, {print_fn = function() end}} end,
  set_anomaly_detection = function() return {false} end,
  set_grad_enabled = function() return {true} end,
  manual_seed = function() return {42} end,
  _sgd_step = function(e) return {e.ones(2), e.ones(2), e.zeros(2), 0.1, 0.9, 0, 0, false, false, false} end,
  _adam_step = function(e)
    return {e.ones(2), e.ones(2), e.zeros(2), e.zeros(2), nil, 1, 0.1, 0.9, 0.999, 1e-8, 0, false, false, n = 13} end,
  _rmsprop_step = function(e)
    return {e.ones(2), e.ones(2), e.zeros(2), e.zeros(2), e.zeros(2), 0.1, 0.99, 1e-8, 0, 0.9, false} end,
  _adagrad_step = function(e) return {e.ones(2), e.ones(2), e.zeros(2), 1, 0.1, 0, 0, 1e-10, false} end,
  linear = function(e) return {e.randn(2, 3), e.randn(4, 3), e.randn(4)} end,
  scaled_dot_product_attention = function(e)
    return {e.randn(2, 3, 4), e.randn(2, 5, 4), e.randn(2, 5, 3),
            {attn_mask = e.randn(3, 5):gt(0), dropout_p = 0.25}} end,
  _scaled_dot_product_attention = function(e)
    return {e.randn(2, 3, 4), e.randn(2, 5, 4), e.randn(2, 5, 3), nil, true, 0.5, 0.5,
            {generator = e.Generator(1)}, n = 8} end,
  cross_entropy = function(e) return {e.randn(2, 3), e.tensor({1, 3}, {dtype = "int64"})} end,
  nll_loss = function(e) return {e.randn(2, 3):log_softmax(2), e.tensor({2, 3}, {dtype = "int64"})} end,
  mse_loss = function(e) return {e.randn(2, 3), e.randn(2, 3)} end,
  l1_loss = function(e) return {e.randn(2, 3), e.randn(2, 3)} end,
  smooth_l1_loss = function(e) return {e.randn(2, 3), e.randn(2, 3)} end,
  binary_cross_entropy = function(e) return {e.rand(2, 3), e.rand(2, 3)} end,
  binary_cross_entropy_with_logits = function(e) return {e.randn(2, 3), e.rand(2, 3)} end,
  embedding = function(e) return {e.tensor({1, 3}, {dtype = "int64"}), e.randn(4, 2)} end,
  -- valid for both ember.layer_norm (n trailing dims) and F.layer_norm
  -- (normalized_shape): one dim of size 1
  layer_norm = function(e) return {e.randn(3, 1), 1, e.ones(1), e.zeros(1)} end,
  rms_norm = function(e) return {e.randn(2, 3, {dtype = "float64"}):t(), 1, e.ones(2, {dtype = "float64"}), 1e-6} end,
  lstm_cell = function(e) return {e.randn(3, 8), e.randn(3, 2)} end,
  gru_cell = function(e) return {e.randn(3, 6), e.randn(3, 6), e.randn(3, 2)} end,
  _cross_entropy_rows = function(e)
    return {e.randn(3, 4), e.tensor({1, -100, 4}, {dtype = "int64"}), e.rand(4), -100, 0.1} end,
  batch_norm = function(e) return {e.randn(4, 3), e.zeros(3), e.ones(3), e.ones(3), e.zeros(3), true, 0.1, 1e-5} end,
  permute = function(e) return {e.randn(2, 3, 4), 3, 1, 2} end,
  transpose = function(e) return {e.randn(2, 3, 4), 1, 3} end,
  expand = function(e) return {e.randn(1, 3), 4, 3} end,
  view_as = function(e) return {e.randn(2, 3), e.zeros(3, 2)} end,
  reshape_as = function(e) return {e.randn(2, 3), e.zeros(6)} end,
  set_allow_tf32 = function() return {true} end,
  no_grad = function(e) return {function() return e.ones(2) * 2 end} end,
  checkpoint = function(e)
    return {function(x, k) return x:exp() * k, x:sum() end, e.randn(3):requires_grad_(), 2} end,
  Function = function(e)
    return {{forward = function(_, x) return x * 2 end, backward = function(_, g) return g * 2 end}} end,
  any = function(e) return {e.tensor({{0, 1}, {0 / 0, 0}}), -1, {keepdim = true}} end,
  all = function(e) return {e.tensor({{1, 0}, {2, 3}}, {dtype = "int32"}):t(), 1, true} end,
  logical_and = function(e) return {e.randn(2, 3):gt(0), e.tensor({1, 0, 2})} end,
  logical_or = function(e) return {e.randn(3, 1), e.zeros(1, 2, {dtype = "uint8"})} end,
  logical_xor = function(e) return {e.tensor({0 / 0, 0, 1}), e.randn(2, 3):t():t()} end,
  silu = function(e) return {e.randn(2, 3):t()} end,
  mish = function(e) return {e.tensor({-30, 0, 30, 0 / 0})} end,
  rms_norm = function(e) return {e.randn(2, 3, 4), {3, 4}, e.ones(3, 4), 1e-6} end,
  chars = function() return {"hello, w\xc3\xb6rld\n"} end,
  read_image = function() return {"spec/fixtures/images/cat/a.png", {size = {3, 4}, channels = 1}} end,
  image_folder = function()
    return {"spec/fixtures/images", {size = {2, 3}, channels = 3, extensions = {".png", ".jpg"}}, {2, 1}} end,
  write_image = function(e) return {e.rand(3, 4, 5):transpose(2, 3), {compression = 1}} end,
  -- plain numeric records between the odd ones: the C scanner's runs
  csv = function() return {'a,"b,c",y\r\n1,2,cat\n-0, .5e1 ,dog\r\n3,"4",dog\n\n7,8.,cat\n', {target = "y", columns = {1, "b,c"}}} end,
  windows = function(e) return {e.arange(1, 21, {dtype = "int64"}), 4, 3, {generator = e.Generator(6)}} end,
  RandomCrop = function() return {3, {padding = 1, padding_mode = "reflect"}} end,
  RandomHorizontalFlip = function() return {0.5} end,
  Normalize = function() return {{0.5, 0.5}, {0.2, 0.3}} end,
  RandomRotation = function() return {{-5, 20}, {fill = 1}} end,
  transforms = function(e) return {{e.data.RandomCrop(2), e.data.RandomRotation(3)}} end,
  transforms_call = function(e) return {e.randn(2, 2, 3, 4):transpose(3, 4), {generator = e.Generator(2)}} end,
  loader_prefetch = function(e)
    return {e.randn(5, 2, 4, 4), e.arange(1, 6), {batch_size = 2, prefetch = 2, shuffle = true,
            transform = e.data.transforms{e.data.RandomCrop(3, {padding = 1}), e.data.Normalize(0, 2)}}}
  end,
  loader_images = function(e)
    return {e.data.image_folder("spec/fixtures/images", {size = {3, 4}}),
            {batch_size = 3, prefetch = 2, shuffle = true, generator = e.Generator(4),
             transform = e.data.transforms{e.data.RandomCrop(2, {padding = 1})}}}
  end,
  encode = function() return {"h\xc3\xb6l"} end,
  decode = function(e) return {e.tensor({1, 2, 3}, {dtype = "int64"})} end,
  mha_forward = function(e)
    return {e.randn(2, 3, 4), e.randn(2, 5, 3), e.randn(2, 5, 4),
            {key_padding_mask = e.randn(2, 5):gt(1), need_weights = true}} end,
  encoder_layer_forward = function(e)
    return {e.randn(2, 3, 4), {src_mask = e.randn(3, 3), is_causal = true}} end,
  decoder_layer_forward = function(e)
    return {e.randn(3, 4), e.randn(5, 4), {tgt_is_causal = true, memory_mask = e.randn(3, 5):gt(0)}} end,
}

-- Every target as {name=, fn=, method=bool}, sorted by name.
function M.targets(ember)
  local out = {}
  local function add(name, fn, method) out[#out + 1] = {name = name, fn = fn, method = method} end
  for k, v in pairs(ember) do
    if type(v) == "function" and not M.SKIP[k] then add("ember." .. k, v, false) end
  end
  if type(ember.cuda) == "table" then
    for k, v in pairs(ember.cuda) do
      if type(v) == "function" then add("ember.cuda." .. k, v, false) end
    end
  end
  if type(ember.distributed) == "table" then   -- a world of one here
    for k, v in pairs(ember.distributed) do
      if type(v) == "function" then add("ember.distributed." .. k, v, false) end
    end
  end
  if type(ember.autograd) == "table" then   -- Function, checkpoint
    for k, v in pairs(ember.autograd) do
      if type(v) == "function" then add("ember.autograd." .. k, v, false) end
    end
  end
  if type(ember.metrics) == "table" then   -- precision, recall, f1, auc, ...
    for k, v in pairs(ember.metrics) do
      if type(v) == "function" then add("ember.metrics." .. k, v, false) end
    end
  end
  local F = ember.nn and ember.nn.functional
  if type(F) == "table" then
    for k, v in pairs(F) do
      if type(v) == "function" then add("ember.nn.functional." .. k, v, false) end
    end
  end
  if type(ember.data) == "table" then
    for _, k in ipairs(M.DATA) do add("ember.data." .. k, ember.data[k], false) end
    local tok = ember.data.chars(M.SEEDS.chars()[1])
    -- a composed transform called on fuzzed batches, and a loader with
    -- transforms and prefetch over fuzzed tensors (one epoch, cut short)
    local tf = ember.data.transforms{ember.data.RandomCrop(3, {padding = 2}),
                                     ember.data.RandomHorizontalFlip(),
                                     ember.data.RandomRotation(10)}
    add("ember.data.transforms_call", function(...) return tf(...) end, false)
    local function first_batches(count)
      return function(...)
        local n = 0
        for _ in ember.data.loader(...) do
          n = n + 1
          if n == count then break end
        end
      end
    end
    add("ember.data.loader_prefetch", first_batches(3), false)
    -- an image folder decoded on the prefetch worker (its C batch source)
    add("ember.data.loader_images", first_batches(2), false)
    add("ember.data.Tokenizer:encode", function(...) return tok:encode(...) end, false)
    add("ember.data.Tokenizer:decode", function(...) return tok:decode(...) end, false)
    -- GPT-2's BPE: training (small sizes: time grows with them) and the
    -- tokenizer's methods on one trained here; loading has fuzz_bpe.c
    add("ember.data.BPE.train", function(text, n, ...)
      if math.type(n) == "integer" and n > 400 then n = 400 end
      return ember.data.BPE.train(text, n, ...)
    end, false)
    local bpe = ember.data.BPE.train(M.SEEDS.chars()[1]:rep(3), 260)
    add("ember.data.BPE:encode", function(...) return bpe:encode(...) end, false)
    add("ember.data.BPE:decode", function(...) return bpe:decode(...) end, false)
    -- the image readers on the fixture folder with fuzzed options (sizes
    -- capped at 64: a fuzzed {30000, 30000} is legal and only slow), the
    -- folder's ds:batch on fuzzed indices
    local function small(opts)
      if type(opts) == "table" and type(opts.size) == "table" then
        for k, v in pairs(opts.size) do
          if math.type(v) == "integer" and v > 64 then opts.size[k] = 64 end
        end
      end
      return opts
    end
    add("ember.data.read_image", function(p, opts, ...)
      return ember.data.read_image(p, small(opts), ...)
    end, false)
    add("ember.data.image_folder", function(dir, opts, idx)
      local ds = ember.data.image_folder(dir, small(opts))
      return ds, ds:batch(idx)
    end, false)
    -- data.csv on the fuzzed text written to one scratch file (csv reads
    -- a path; the text is the hostile part), with the fuzzed options
    local csv_path = os.tmpname()
    add("ember.data.csv", function(text, ...)
      local f = assert(io.open(csv_path, "wb"))
      f:write(type(text) == "string" and text or tostring(text))
      f:close()
      return ember.data.csv(csv_path, ...)
    end, false)
    -- data.write_image of the fuzzed tensor and options into one scratch
    -- file (the path is not fuzzed: a fuzzed one could be anywhere)
    local png_path = os.tmpname()
    add("ember.data.write_image", function(x, ...)
      return ember.data.write_image(png_path, x, ...)
    end, false)
  end
  -- the attention layers' calls (masks, shapes, options), on small layers
  -- built once per run (nn's classes are otherwise skipped)
  if ember.nn and ember.nn.MultiheadAttention then
    local nn = ember.nn
    local mha = nn.MultiheadAttention(4, 2, {kdim = 3})
    local enc = nn.TransformerEncoderLayer(4, 2, {dim_feedforward = 6, dropout = 0})
    local dec = nn.TransformerDecoderLayer(4, 2, {dim_feedforward = 6, norm_first = true})
    add("ember.nn.mha_forward", function(...) return mha(...) end, false)
    add("ember.nn.encoder_layer_forward", function(...) return enc(...) end, false)
    add("ember.nn.decoder_layer_forward", function(...) return dec(...) end, false)
  end
  local mt = getmetatable(ember.zeros(1))
  local methods = mt.__methods or ember.Tensor
  for k, v in pairs(methods) do
    if type(v) == "function" then add("Tensor:" .. k, v, true) end
  end
  for k, v in pairs(mt) do
    if type(v) == "function" then add("mt." .. k, v, true) end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

-- }======================================================================

-- {======================================================================
-- Random values
-- =======================================================================

local R = math.random
local function pick(t) return t[R(#t)] end

local SPECIAL_INTS = {0, 1, 2, 3, 4, -1, -2, 8, 9, 100, 1 << 31, (1 << 31) - 1,
  -(1 << 31), 1 << 32, 1 << 53, 1 << 62, math.maxinteger, math.mininteger}
local SPECIAL_FLOATS = {0.0, -0.0, 0.5, 1.5, -1.5, 0 / 0, math.huge, -math.huge,
  1e300, -1e300, 2.0 ^ 31, 2.0 ^ 63, -2.0 ^ 63, 2.0 ^ 64, 1e-310, 3.0}
local STRINGS = {"float32", "float64", "int32", "int64", "uint8", "bool",
  "cuda", "cuda:0", "cuda:1", "cuda:99", "cpu", "cpu:0", "", "x", "1", "-1",
  "nan", "float16", "bfloat16", "bf16", "half", "\0", ("z"):rep(300), "%s%s%s%n"}

local gen_value, related, mutate  -- forward
local corpus = {}  -- name -> argument lists of calls that succeeded

local function small() return R(0, 4) end

local function int_arg()
  local r = R()
  if r < 0.6 then return R(1, 3) end
  if r < 0.75 then return R(-3, 0) end
  return pick(SPECIAL_INTS)
end

-- A slicing key t[{...}]: usually well formed ({}, {a, b}, {a, b, step},
-- integers, an index tensor), sometimes hostile (zero or negative steps,
-- out-of-range bounds, four numbers, strings, float or 2-d index tensors,
-- a mask, too many entries).
function M.slice_key()
  local e = require "ember"
  local function entry()
    local q = R(1, 12)
    if q == 1 then return {} end
    if q == 2 then return int_arg() end
    if q == 3 then return {int_arg()} end
    if q == 4 then return {int_arg(), int_arg()} end
    if q == 5 then return {R(-3, 3), R(-3, 3), R(-1, 3)} end
    if q == 6 then return e.tensor({R(-3, 4), R(1, 3)}, {dtype = "int64"}) end
    if q == 7 then return pick({{1, 2, 3, 4}, "a", 1.5, {1.5}, {nil, 2}, true}) end
    if q == 8 then return e.tensor({1, 2}) end
    if q == 9 then return e.tensor({{1}}, {dtype = "int64"}) end
    if q == 10 then return e.tensor({true, false}) end
    return {R(1, 2), R(1, 3)}
  end
  if R() < 0.1 then return entry() end    -- a tensor (or value) key alone
  local k = {}
  for i = 1, R(0, 4) do k[i] = entry() end
  return k
end

-- A size list: usually small, sometimes hostile.
local function sizes()
  local r = R()
  local n = r < 0.85 and R(0, 4) or (r < 0.95 and R(8, 10) or R(11, 40))
  local t = {}
  for i = 1, n do
    local q = R()
    if q < 0.85 then t[i] = small() elseif q < 0.93 then t[i] = pick(SPECIAL_INTS)
    else t[i] = gen_value(2) end
  end
  -- numel overflow: a few dims of 2^31 or 2^62
  if R() < 0.05 then t = {1 << 31, 1 << 31, 1 << 31} end
  if R() < 0.03 then t = {1 << 62, 4} end
  return t
end

-- Nested data for ember.tensor: regular, ragged, mixed, deep.
local function nested(depth)
  local r = R()
  if depth <= 0 or r < 0.3 then
    local q = R()
    if q < 0.7 then return R() * 10 - 5 end
    if q < 0.85 then return pick(SPECIAL_FLOATS) end
    if q < 0.9 then return R(0, 1) == 1 end
    return gen_value(0)
  end
  local t = {}
  for i = 1, R(0, 3) do t[i] = nested(depth - 1) end
  return t
end

local function deep(n)
  local t = {1}
  for _ = 1, n do t = {t} end
  return t
end

local function options()
  local o = {}
  local keys = {"dtype", "device", "requires_grad", "keepdim", "dim", "lr",
    "momentum", "stride", "padding", "generator", "out", "inplace", "junk",
    1, 2, "__index", "precision", "threshold", "edgeitems", "linewidth",
    "sci_mode", "weight", "bias", "eps", "reduction", "ignore_index"}
  for _ = 1, R(0, 4) do
    local k = pick(keys)
    local q = R()
    if k == "dtype" and q < 0.7 then o[k] = pick(M.DTYPES)
    elseif k == "device" and q < 0.7 then o[k] = pick({"cpu", "cuda", "cuda:0", "cuda:7", "tpu"})
    else o[k] = gen_value(1) end
  end
  return o
end

-- The pool of live tensors that arguments are drawn from.
local pool, ember = {}, nil

local function pool_tensor()
  if #pool == 0 then return ember.zeros(2, 3) end
  return pool[R(#pool)]
end

-- One random value; `d` bounds the nesting of tables made of values.
function gen_value(d)
  d = d or 2
  local r = R(1, 100)
  if r <= 40 then return pool_tensor() end
  if r <= 55 then return int_arg() end
  if r <= 60 then return pick(SPECIAL_FLOATS) end
  if r <= 63 then return nil end
  if r <= 65 then return R(0, 1) == 1 end
  if r <= 72 then return pick(STRINGS) end
  if r <= 80 and d > 0 then return sizes() end
  if r <= 85 and d > 0 then return options() end
  if r <= 88 and d > 0 then return nested(R(1, 4)) end
  if r <= 89 then return deep(pick({9, 100, 300, 10000, 100000})) end
  if r <= 91 and d > 0 then
    local t = {}  -- a list of tensors (cat, stack, optimizer steps)
    for i = 1, R(0, 4) do t[i] = (R() < 0.85) and pool_tensor() or gen_value(d - 1) end
    return t
  end
  if r <= 93 then
    local v = pool_tensor()
    return pick({function() return v end, function() error("fuzz: user error") end,
                 function(...) return ... end, function() return nil end})
  end
  if r <= 94 then return io.stdout end            -- a foreign userdata
  if r <= 95 then return coroutine.create(function() end) end
  if r <= 96 then return setmetatable({}, {__index = function() error("fuzz: __index") end}) end
  return R(1, 3) + 0.0  -- integral float
end

-- Fill `values` of a new tensor: random, with NaN/inf for float dtypes.
local function random_tensor(dtype, shape, device)
  local ok, t = pcall(ember.zeros, shape, {dtype = dtype})
  if not ok then return nil end
  local okr, src = pcall(ember.randn, shape)
  if okr then
    src = src * 3
    if not t:is_floating_point() then src = src:abs() end
    pcall(t.copy_, t, src)
  end
  if t:is_floating_point() and t:numel() > 0 and R() < 0.3 then
    local flat = t:view(-1)
    pcall(function() flat[R(flat:numel())] = pick({0 / 0, math.huge, -math.huge}) end)
  end
  if device and R() < 0.5 then
    local okc, c = pcall(t.to, t, device)
    if okc then t = c end
  end
  if R() < 0.2 and t:is_floating_point() then
    pcall(t.requires_grad_, t, true)
  end
  return t
end

local SHAPES = {{}, {0}, {3}, {2, 3}, {3, 2}, {2, 0, 3}, {1, 4}, {4, 1},
  {2, 3, 4}, {1, 1, 1, 1, 1, 1, 1, 1}, {2, 1, 3, 1}, {1, 1, 2, 5, 5}, {5},
  {1, 2, 5, 5}, {2, 2, 3, 3}, {2, 1, 4, 4}, {3, 3}, {2, 0}}

-- A view of t that is not contiguous (or another shape of it).
local function random_view(t)
  local d = t:dim()
  local views = {
    function() return t:transpose(1, d) end,
    function() return t:narrow(d, 1, math.max(t:size(d) - 1, 0)) end,
    function() local s = t:shape(); s[1] = 3 * s[1]; return t:narrow(1, 1, t:size(1)):expand(table.unpack(s)) end,
    function() local s = t:shape(); table.insert(s, 1, 3); return t:expand(table.unpack(s)) end,
    function() return t:select(1, 1) end,
    function() return t:t() end,
    function()
      local p = {}
      for i = 1, d do p[i] = d + 1 - i end
      return t:permute(table.unpack(p))
    end,
    function() return t:unsqueeze(1) end,
  }
  local ok, v = pcall(pick(views))
  return ok and v or nil
end

function M.refill_pool(cuda_ok)
  pool = {}
  for _ = 1, 40 do
    local t = random_tensor(pick(M.DTYPES), pick(SHAPES), cuda_ok and "cuda" or nil)
    if t then
      pool[#pool + 1] = t
      if t:dim() > 0 and R() < 0.6 then
        local v = random_view(t)
        if v then pool[#pool + 1] = v end
      end
    end
  end
end

local function pool_add(v)
  if ember.is_tensor(v) then
    local ok, n = pcall(v.numel, v)
    if ok and n <= 4096 then
      if #pool < 80 then pool[#pool + 1] = v else pool[R(#pool)] = v end
    end
  end
end

-- }======================================================================

-- A value that fits beside tensor a: a tensor of its shape (any dtype, a
-- bool mask, a non-contiguous copy), an index tensor within its sizes, a
-- valid dimension, or a tensor of the pool.
function related(a)
  if not ember.is_tensor(a) then return pool_tensor() end
  local ok, v = pcall(function()
    local r = R(1, 9)
    if r == 1 then return a end
    if r == 2 then return ember.ones_like(a, {dtype = pick(M.DTYPES)}) end
    if r == 3 then return a:gt(0) end
    if r == 4 then return random_view(a) or a:clone() end
    if r == 5 then
      local hi = a:dim() > 0 and math.max(a:size(1), 1) or 1
      return ember.randint(1, hi, {R(0, 3)}, {dtype = "int64"})
    end
    if r == 6 then return ember.randint(1, 3, a:shape(), {dtype = "int64"}) end
    if r == 7 then return R(1, math.max(a:dim(), 1)) end
    if r == 8 then return ember.randn(a:shape()):to(a.device) end
    return {a, a:clone()}
  end)
  return ok and v or pool_tensor()
end

-- v, changed: a hostile value, a view of it, another dtype or device.
function mutate(v, a)
  local r = R(1, 8)
  if ember.is_tensor(v) and r <= 3 then
    local ok, w = pcall(function()
      if r == 1 then return random_view(v) end
      if r == 2 then return v:to(pick(M.DTYPES)) end
      return v:to(pick({"cuda", "cpu"}))
    end)
    if ok and w then return w end
  end
  if math.type(v) == "integer" and r <= 5 then return pick(SPECIAL_INTS) end
  if r == 6 then return related(a) end
  return gen_value()
end

-- {======================================================================
-- Calls
-- =======================================================================

-- A short, printable description of a value (for --trace and reports).
local function describe(v, d)
  d = d or 0
  local ty = type(v)
  if ty == "number" then
    if v ~= v then return "0/0" end
    if v == math.huge then return "math.huge" end
    if v == -math.huge then return "-math.huge" end
    return math.type(v) == "integer" and tostring(v) or ("%.17g"):format(v)
  elseif ty == "string" then
    return #v > 40 and ("(%q):rep(%d)"):format(v:sub(1, 1), #v) or ("%q"):format(v)
  elseif ty == "table" then
    if d > 2 then return "{...}" end
    local depth, x = 0, v
    while type(x) == "table" and #x == 1 and type(x[1]) == "table" do depth = depth + 1; x = x[1] end
    if depth > 3 then return ("<%d nested tables>"):format(depth) end
    -- keys sorted, so that a replay prints the same text
    local keys, parts = {}, {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      if math.type(a) == "integer" and math.type(b) == "integer" then return a < b end
      if math.type(a) == "integer" or math.type(b) == "integer" then return math.type(a) == "integer" end
      return tostring(a) < tostring(b)
    end)
    for _, k in ipairs(keys) do
      if #parts > 8 then parts[#parts + 1] = "..."; break end
      local ks = math.type(k) == "integer" and "" or (tostring(k) .. "=")
      parts[#parts + 1] = ks .. describe(v[k], d + 1)
    end
    return "{" .. table.concat(parts, ", ") .. "}"
  elseif ember and ember.is_tensor(v) then
    local ok, s = pcall(function()
      return ("tensor<%s,%s>[%s]%s"):format(v.dtype, v.device, table.concat(v:shape(), ","),
        v:is_contiguous() and "" or " noncontig")
    end)
    return ok and s or "tensor<closed>"
  end
  return ty
end

-- The contents of t as a string, to check that a failed call left it alone.
local function snapshot(t)
  local ok, s = pcall(function()
    if t:numel() > 256 then return nil end
    local parts = {t.dtype, t.device, table.concat(t:shape(), ",")}
    local flat = t:contiguous():view(-1):double():cpu()
    for i = 1, flat:numel() do parts[#parts + 1] = tostring(flat[i]) end
    return table.concat(parts, " ")
  end)
  return ok and s or nil
end

-- Operators, run as Lua would: the left side may be a number.
local OPERATORS = {
  function(a, b) return a + b end, function(a, b) return a - b end,
  function(a, b) return a * b end, function(a, b) return a / b end,
  function(a, b) return a ^ b end, function(a) return -a end,
  function(a) return #a end, function(a) return tostring(a) end,
  function(a, k) return a[k] end, function(a, k, v) a[k] = v end,
}

-- One random call; returns its description thunk and whether it raised.
local function one_call(targets, trace, i, stats)
  local tg = pick(targets)
  local args, n = {}, R(0, 5)
  local style = R(1, 10)
  local fn, name = tg.fn, tg.name
  if style == 1 then
    -- an operator or a field read/write
    local op = R(#OPERATORS)
    fn, name = OPERATORS[op], "operator#" .. op
    args = {gen_value(), gen_value(), gen_value()}
    if op >= 9 and R() < 0.6 then
      local q = R()
      args[2] = q < 0.3 and pick(M.FIELDS) or q < 0.6 and int_arg() or M.slice_key()
    end
    if R() < 0.7 then args[1] = pool_tensor() end
    n = 3
  elseif style <= 5 and corpus[name] then
    -- mutate a call that succeeded before: hostile values where valid
    -- ones were, which reaches the checks deep inside an op
    local base = pick(corpus[name])
    for k = 1, base.n do args[k] = base[k] end
    n = base.n
    for _ = 1, R(0, 2) do
      local k = R(math.max(n, 1) + (R() < 0.15 and 1 or 0))
      n = math.max(n, k)
      args[k] = mutate(args[k], args[1])
    end
  else
    for k = 1, n do args[k] = gen_value() end
    if tg.method or R() < 0.6 then
      args[1] = (R() < 0.92) and pool_tensor() or gen_value()
      n = math.max(n, 1)
    end
    -- dims, sizes and tensors that fit the first are the most common
    -- arguments: favour them
    for k = 2, n do
      local q = R()
      if q < 0.25 then args[k] = int_arg() elseif q < 0.55 then args[k] = related(args[1]) end
    end
    if R() < 0.05 then args[1] = function() return pool_tensor() end end
    if R() < 0.3 then n = n + 1; args[n] = options() end
  end
  if trace then
    local parts = {}
    for k = 1, n do parts[k] = describe(args[k]) end
    io.stderr:write(("call %d: %s(%s)\n"):format(i, name, table.concat(parts, ", ")))
    io.stderr:flush()
  end
  -- the in-place contract: a failed call leaves its receiver unchanged
  local recv = args[1]
  local before = (ember.is_tensor(recv) and (name:match("_$") or name:match("_step$") or style == 1)) and snapshot(recv) or nil
  local res = table.pack(pcall(fn, table.unpack(args, 1, n)))
  if res[1] then
    stats.ok = stats.ok + 1
    local c = corpus[name] or {}
    corpus[name] = c
    local saved = {n = n}
    for k = 1, n do saved[k] = args[k] end
    if #c < 8 then c[#c + 1] = saved else c[R(#c)] = saved end
    for k = 2, res.n do pool_add(res[k]) end
  else
    stats.errors = stats.errors + 1
    if type(res[2]) ~= "string" then
      -- Ember's errors are messages (the functions passed in raise strings)
      stats.bad[#stats.bad + 1] = ("%s raised a %s, not a message"):format(name, type(res[2]))
    end
    if before then
      local after = snapshot(recv)
      if after and after ~= before then
        local parts = {}
        for k = 1, n do parts[k] = describe(args[k]) end
        stats.bad[#stats.bad + 1] = ("%s(%s) failed (%s) but changed its tensor"):format(
          name, table.concat(parts, ", "), tostring(res[2]):sub(1, 120))
      end
    end
  end
end

-- Run batch `batch` of seed `seed` in this process: `calls` random calls.
function M.run_batch(e, seed, batch, calls, trace)
  ember = e
  math.randomseed(seed, batch)
  local cuda_ok = pcall(function() return ember.zeros(1):to("cuda") end)
  local targets = M.targets(ember)
  M.refill_pool(cuda_ok)
  corpus = {}
  for _, tg in ipairs(targets) do
    local seed_fn = M.SEEDS[tg.name:match("[%w_]+$")]
    if seed_fn then
      local ok, a = pcall(seed_fn, ember)
      if ok then a.n = a.n or #a; corpus[tg.name] = {a} end
    end
  end
  local stats = {ok = 0, errors = 0, bad = {}}
  local grad_mode = ember.is_grad_enabled()
  for i = 1, calls do
    one_call(targets, trace, i, stats)
    if i % 500 == 0 then
      M.refill_pool(cuda_ok)
      collectgarbage()
    end
  end
  pcall(ember.set_grad_enabled, grad_mode)
  return stats
end

-- }======================================================================

-- {======================================================================
-- The driver
-- =======================================================================

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- Run one batch in a child; returns ok, the output, the exit code.
local function child(opt, batch, trace)
  local build = os.getenv("EMBER_BUILD") or "build"
  local asan = (os.getenv("EMBER_SAN") or "") ~= "" or opt.bin:match("asan") ~= nil
  local env = {}
  -- every other batch runs with the stand-in CUDA plugin (when built): "cuda"
  -- tensors then exist and mixing devices is fuzzed too
  local plugin = build .. "/libember_fakecuda.so"
  if batch % 2 == 0 and io.open(plugin) then env[#env + 1] = "EMBER_CUDA_PLUGIN=" .. q(plugin) end
  -- huge sizes must fail as "out of memory", not take the machine's memory
  local limit = ""
  if asan then
    local prev = os.getenv("ASAN_OPTIONS")
    env[#env + 1] = "ASAN_OPTIONS=" .. q((prev and prev ~= "" and prev .. ":" or "")
      .. "detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=1024:quarantine_size_mb=8")
    env[#env + 1] = "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
  else
    limit = "ulimit -v 4194304; "
  end
  local out = os.tmpname()
  local cmd = ("%s env %s timeout -s KILL %d %s %s --child --seed %d --batch %d --calls %d%s > %s 2>&1; echo $?")
    :format(limit, table.concat(env, " "), opt.timeout, q(opt.bin), q(opt.script),
            opt.seed, batch, opt.calls, trace and " --trace" or "", q(out))
  local p = io.popen("(" .. cmd .. ")")
  local rc = tonumber(p:read("a"):match("(%d+)%s*$"))
  p:close()
  local text = read_all(out)
  os.remove(out)
  local clean = rc == 0 and text:match("fuzz%-ok") and not text:match("ERROR: %a*Sanitizer")
    and not text:match("SUMMARY: %a*Sanitizer")
    and not text:match("runtime error:")
  return clean, text, rc
end

local function parse_args(argv)
  local opt = {seed = nil, seconds = nil, batches = nil, calls = 2000, timeout = 120,
               bin = nil, script = argv[0] or "tools/fuzz/lua_fuzz.lua"}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local function val() i = i + 1; return argv[i] end
    if a == "--child" then opt.child = true
    elseif a == "--trace" then opt.trace = true
    elseif a == "--seed" then opt.seed = math.tointeger(tonumber(val()))
    elseif a == "--batch" then opt.batch = math.tointeger(tonumber(val()))
    elseif a == "--calls" then opt.calls = math.tointeger(tonumber(val()))
    elseif a == "--seconds" then opt.seconds = tonumber(val())
    elseif a == "--batches" then opt.batches = math.tointeger(tonumber(val()))
    elseif a == "--timeout" then opt.timeout = math.tointeger(tonumber(val()))
    elseif a == "--bin" then opt.bin = val()
    else error("lua_fuzz: unknown option " .. tostring(a)) end
    i = i + 1
  end
  return opt
end

function M.main(argv)
  local opt = parse_args(argv)
  if opt.child then
    local stats = M.run_batch(require "ember", opt.seed or 1, opt.batch or 1, opt.calls, opt.trace)
    for _, b in ipairs(stats.bad) do print("fuzz-bad " .. b) end
    print(("fuzz-ok calls=%d ok=%d errors=%d bad=%d"):format(opt.calls, stats.ok, stats.errors, #stats.bad))
    return #stats.bad == 0 and 0 or 3
  end
  opt.seed = opt.seed or (os.time() % 1000000)
  opt.bin = opt.bin or os.getenv("EMBER_BIN") or "./ember"
  if not opt.batches and not opt.seconds then opt.seconds = 120 end
  print(("fuzz: seed %d, %s, %d calls a batch, binary %s"):format(opt.seed,
    opt.batches and (opt.batches .. " batches") or (opt.seconds .. " s"), opt.calls, opt.bin))
  io.stdout:flush()
  local t0, batch, calls, errors, okc = os.time(), 0, 0, 0, 0
  while true do
    if opt.batches and batch >= opt.batches then break end
    if opt.seconds and os.time() - t0 >= opt.seconds then break end
    batch = batch + 1
    local clean, text, rc = child(opt, batch, false)
    if rc == 126 or rc == 127 then
      -- the binary could not start (being relinked by a concurrent make?)
      os.execute("sleep 3")
      clean, text, rc = child(opt, batch, false)
    end
    if not clean then
      print(("fuzz: FAILED in batch %d of seed %d (exit status %s)"):format(batch, opt.seed, tostring(rc)))
      local bad = text:match("fuzz%-bad [^\n]*")
      if rc == 137 then print("fuzz: the batch hung (killed after " .. opt.timeout .. " s)") end
      if bad then
        print(bad)
      else
        -- replay it with a trace: the last call printed is the one that crashed
        local _, ttext = child(opt, batch, true)
        local last
        for line in ttext:gmatch("[^\n]+") do
          if line:match("^call %d+: ") then last = line end
        end
        print("fuzz: crashing " .. tostring(last))
      end
      print("fuzz: output of the batch (tail):")
      print(text:sub(-6000))
      print(("fuzz: replay with: %s %s --child --seed %d --batch %d --calls %d --trace")
        :format(opt.bin, opt.script, opt.seed, batch, opt.calls))
      return 1
    end
    calls = calls + opt.calls
    okc = okc + tonumber(text:match("ok=(%d+)"))
    errors = errors + tonumber(text:match("errors=(%d+)"))
  end
  print(("fuzz: ok: %d iterations (%d batches, %d calls returned, %d raised an error) in %d s, seed %d, no crash, no sanitizer report")
    :format(calls, batch, okc, errors, os.time() - t0, opt.seed))
  return 0
end

-- Run as a script (not loaded with dofile/require): the driver or a child.
if arg and arg[0] and arg[0]:match("lua_fuzz%.lua$") then
  os.exit(M.main(arg))
end

return M
