-- Sampling (core/ops/sampling.c, core/cpu/sampling.c, lua/ember/sampling.lua)
-- and generator objects (bindings/lua_data.c): multinomial with and
-- without replacement checked by chi-square goodness of fit on 1e5 draws
-- with fixed seeds (so the tests are deterministic; the thresholds are the
-- 0.1% points of the chi-square distributions), Bernoulli means, the
-- errors, and the isolation of a generator from the global stream.
local ember = require "ember"

local function fails(msg, f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error: " .. msg)
  assert.is_truthy(tostring(err):find(msg, 1, true),
    ("expected '%s' in '%s'"):format(msg, tostring(err)))
end

--- Pearson's statistic of counts against expected counts (cells with an
-- expectation of 0 must be empty).
local function chi2(counts, expected)
  local s = 0
  for i, e in ipairs(expected) do
    if e == 0 then
      assert.are.equal(0, counts[i] or 0, "a zero-probability cell was drawn")
    else
      local d = (counts[i] or 0) - e
      s = s + d * d / e
    end
  end
  return s
end

local function tally(values)
  local c = {}
  for _, v in ipairs(values) do c[v] = (c[v] or 0) + 1 end
  return c
end

-- 0.999 quantiles of chi-square with df degrees of freedom
local CHI2_999 = {[1] = 10.83, [2] = 13.82, [3] = 16.27, [4] = 18.47, [5] = 20.52}

local W = {1, 2, 3, 4, 0, 10}       -- sum 20
local N = 100000

describe("multinomial", function()
  before_each(function() ember.manual_seed(1234) end)

  it("with replacement fits the weights (chi-square, 1e5 draws)", function()
    for _, dtype in ipairs({"float32", "float64"}) do
      local idx = ember.multinomial(ember.tensor(W, {dtype = dtype}), N, {replacement = true})
      assert.are.equal("int64", idx.dtype)
      assert.are.same({N}, idx:shape())
      local exp = {}
      for i, w in ipairs(W) do exp[i] = N * w / 20 end
      assert.is_true(chi2(tally(idx:totable()), exp) < CHI2_999[4])
    end
  end)

  it("draws from a large row (several chunks) with the right masses", function()
    -- 5000 categories: the first half weighs 3 times the second
    local w = ember.ones(5000)
    w:narrow(1, 1, 2500):fill_(3)
    local idx = ember.multinomial(w, N, {replacement = true}):totable()
    local first, out = 0, 0
    for _, v in ipairs(idx) do
      if v < 1 or v > 5000 then out = out + 1 end
      if v <= 2500 then first = first + 1 end
    end
    assert.are.equal(0, out)
    assert.is_true(chi2({first, N - first}, {N * 0.75, N * 0.25}) < CHI2_999[1])
  end)

  it("without replacement: first draws fit the weights, no repeats", function()
    local rows = ember.tensor(W):view(1, 6):expand(N, 6):contiguous()
    local idx = ember.multinomial(rows, 5)   -- the 5 positive weights
    assert.are.same({N, 5}, idx:shape())
    local t = idx:totable()
    local firsts, bad = {}, 0      -- (plain checks: 5e5 asserts are slow)
    for r = 1, N do
      firsts[r] = t[r][1]
      local seen = {}
      for j = 1, 5 do
        if seen[t[r][j]] or t[r][j] == 5 then bad = bad + 1 end
        seen[t[r][j]] = true
      end
    end
    assert.are.equal(0, bad, "rows with a repeat or a zero weight drawn")
    local exp = {}
    for i, w in ipairs(W) do exp[i] = N * w / 20 end
    assert.is_true(chi2(tally(firsts), exp) < CHI2_999[4])
  end)

  it("without replacement: pairs appear with their exact probabilities", function()
    -- weights 1, 2, 3 (p = 1/6, 2/6, 3/6), two draws: P{i, j} =
    -- p_i p_j / (1 - p_i) + p_j p_i / (1 - p_j)
    local p = {1 / 6, 2 / 6, 3 / 6}
    local function pair(i, j) return p[i] * p[j] / (1 - p[i]) + p[j] * p[i] / (1 - p[j]) end
    local t = ember.multinomial(ember.tensor{{1, 2, 3}}:expand(N, 3):contiguous(), 2):totable()
    local c, repeats = {0, 0, 0}, 0   -- {1,2}, {1,3}, {2,3}
    for r = 1, N do
      local a, b = math.min(t[r][1], t[r][2]), math.max(t[r][1], t[r][2])
      if a == b then repeats = repeats + 1 else c[a + b - 2] = c[a + b - 2] + 1 end
    end
    assert.are.equal(0, repeats)
    local exp = {N * pair(1, 2), N * pair(1, 3), N * pair(2, 3)}
    assert.is_true(chi2(c, exp) < CHI2_999[2])
  end)

  it("draws every category once when n equals the positive count", function()
    local t = ember.multinomial(ember.tensor{0.5, 0, 2, 1e-30, 7}, 4):totable()
    table.sort(t)
    assert.are.same({1, 3, 4, 5}, t)
  end)

  it("draws a permutation when n is every category (several chunks)", function()
    local t = ember.multinomial(ember.rand(2, 3000) + 0.01, 3000)
    for r = 1, 2 do
      local v = t[r]:totable()
      table.sort(v)
      local ok = #v == 3000
      for i = 1, #v do ok = ok and v[i] == i end
      assert.is_true(ok, "row " .. r .. " is not a permutation of 1..3000")
    end
  end)

  it("rows of a 2-D input are independent and follow their own weights", function()
    -- rows alternate two distributions; pairs of neighbouring rows are
    -- independent: their joint counts fit the product of the marginals
    local probs = ember.tensor{{1, 1}, {1, 3}}:repeat_interleave(N / 2, 1)
    probs = probs:view(2, N / 2, 2):transpose(1, 2):reshape(N, 2):contiguous()
    local t = ember.multinomial(probs, 1):view(-1):totable()
    local joint = {0, 0, 0, 0}
    for r = 1, N, 2 do
      local k = (t[r] - 1) * 2 + t[r + 1]
      joint[k] = joint[k] + 1
    end
    local half = N / 2
    local exp = {half * 0.5 * 0.25, half * 0.5 * 0.75, half * 0.5 * 0.25, half * 0.5 * 0.75}
    assert.is_true(chi2(joint, exp) < CHI2_999[3])
  end)

  it("is a method, and rows x n for 2-D input", function()
    local p = ember.tensor{{0, 1}, {1, 0}}
    assert.are.same({{2, 2, 2}, {1, 1, 1}}, p:multinomial(3, {replacement = true}):totable())
    assert.are.same({{2}, {1}}, p:multinomial(1):totable())
  end)

  it("reads non-contiguous and float64 input as the same weights", function()
    local w = ember.tensor{{1, 2}, {3, 4}, {0, 8}}        -- exact in every float type
    local wt = w:t()                                      -- [2, 3], strided
    local s = ember.get_rng_state()
    local a = wt:multinomial(50, {replacement = true})
    ember.set_rng_state(s)
    local b = wt:contiguous():double():multinomial(50, {replacement = true})
    ember.set_rng_state(s)
    assert.is_true(a:equal(b))
  end)

  it("moves the counter by rows * n, and the same state gives the same draws", function()
    local p = ember.rand(3, 40)
    local s = ember.get_rng_state()
    local a = p:multinomial(7)
    assert.are.equal(s.offset + 21, ember.get_rng_state().offset)
    ember.set_rng_state(s)
    assert.is_true(p:multinomial(7):equal(a))
    local b = p:multinomial(5, {replacement = true})
    assert.are.equal(s.offset + 36, ember.get_rng_state().offset)
    assert.are.same({3, 5}, b:shape())
  end)

  it("gives PyTorch's errors, naming multinomial, and moves no counter", function()
    local s = ember.get_rng_state()
    fails("multinomial: probability tensor contains either `inf`, `nan` or element < 0 (row 2)",
          ember.multinomial, ember.tensor{{1, 0}, {1, -1}}, 1)
    fails("element < 0 (row 1)", ember.multinomial, ember.tensor{1, 0 / 0}, 1)
    fails("element < 0 (row 1)", ember.multinomial, ember.tensor{1, math.huge}, 1)
    fails("multinomial: invalid multinomial distribution (sum of probabilities <= 0) (row 2)",
          ember.multinomial, ember.tensor{{1, 0}, {0, 0}}, 1, {replacement = true})
    fails("multinomial: invalid multinomial distribution (with replacement=False, not enough " ..
          "non-negative category to sample) (row 1)", ember.multinomial, ember.tensor{1, 0, 0}, 2)
    fails("multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement",
          ember.multinomial, ember.tensor{1, 2}, 3)
    fails("multinomial: cannot sample n_sample <= 0 samples", ember.multinomial, ember.tensor{1, 2}, 0)
    fails("multinomial: prob_dist must be 1 or 2 dim", ember.multinomial, ember.tensor(1), 1)
    fails("multinomial: prob_dist must be 1 or 2 dim", ember.multinomial, ember.ones(2, 2, 2), 1)
    fails("multinomial: only supports floating-point dtypes for input, got int64",
          ember.multinomial, ember.tensor{1, 2, 3}:long(), 1)
    fails("multinomial: there are no categories", ember.multinomial, ember.zeros(0), 1)
    fails("multinomial: num_samples must be an integer, got 1.5", ember.multinomial, ember.ones(2), 1.5)
    fails("multinomial: unknown option 'replace'", ember.multinomial, ember.ones(2), 1, {replace = true})
    fails("multinomial: replacement must be a boolean", ember.multinomial, ember.ones(2), 1, {replacement = 1})
    fails("generator: expected an ember.Generator, got number", ember.multinomial, ember.ones(2), 1,
          {generator = 3})
    local e = ember.get_rng_state()
    assert.are.same(s, e)
  end)

  it("takes zero rows", function()
    local r = ember.multinomial(ember.ones(0, 4), 2)
    assert.are.same({0, 2}, r:shape())
  end)
end)

describe("bernoulli", function()
  before_each(function() ember.manual_seed(99) end)

  it("has mean p (1e5 draws) and p's dtype", function()
    for _, dtype in ipairs({"float32", "float64"}) do
      local b = ember.bernoulli(ember.full({N}, 0.3, {dtype = dtype}))
      assert.are.equal(dtype, b.dtype)
      local ones = b:sum():item()
      assert.is_true(chi2({ones, N - ones}, {N * 0.3, N * 0.7}) < CHI2_999[1])
      local vals = tally(b:totable())
      assert.are.equal(N, (vals[0] or 0) + (vals[1] or 0))
    end
  end)

  it("gives 0 for p = 0 and 1 for p = 1, per element, as a method too", function()
    local p = ember.tensor{0, 1, 0, 1}
    assert.are.same({0, 1, 0, 1}, p:bernoulli():totable())
    assert.are.equal(0, ember.bernoulli(ember.zeros(300)):max():item())
    assert.are.same({0}, ember.bernoulli(ember.zeros(0)):shape())
  end)

  it("bernoulli_ fills in place with a number or a broadcast tensor", function()
    local t = ember.zeros(N)
    assert.are.equal(t, t:bernoulli_(0.25))
    local ones = t:sum():item()
    assert.is_true(chi2({ones, N - ones}, {N * 0.25, N * 0.75}) < CHI2_999[1])
    local i = ember.zeros(2, 3, {dtype = "int64"}):bernoulli_(ember.tensor{1, 0, 1})
    assert.are.same({{1, 0, 1}, {1, 0, 1}}, i:totable())
    local h = ember.zeros(5):bernoulli_()       -- p = 0.5
    assert.are.same({5}, h:shape())
  end)

  it("refuses probabilities outside [0, 1] and NaN, changing nothing", function()
    fails("bernoulli: expects all elements of p to be in [0, 1]", ember.bernoulli, ember.tensor{0.5, 1.5})
    fails("bernoulli: expects all elements of p to be in [0, 1]", ember.bernoulli, ember.tensor{0 / 0})
    fails("bernoulli: expected a float tensor", ember.bernoulli, ember.tensor{1, 0}:long())
    fails("bernoulli: unknown option 'gen'", ember.bernoulli, ember.ones(2), {gen = 1})
    local t = ember.full({3}, 7)
    local s = ember.get_rng_state()
    fails("bernoulli_: expects p to be in [0, 1], but got p=-0.5", t.bernoulli_, t, -0.5)
    fails("bernoulli_: expects all elements of p", t.bernoulli_, t, ember.tensor{0.5, 2, 0})
    fails("does not broadcast", t.bernoulli_, t, ember.tensor{{0.5}, {0.5}})
    assert.are.same({7, 7, 7}, t:totable())
    assert.are.equal(s.offset, ember.get_rng_state().offset)   -- no failed call drew
  end)
end)

describe("ember.Generator", function()
  it("starts at PyTorch's default seed, or the one given", function()
    assert.are.equal(67280421310721, ember.Generator():initial_seed())
    assert.are.equal(7, ember.Generator(7):initial_seed())
    assert.are.equal("Generator(seed=7, offset=0)", tostring(ember.Generator(7)))
    fails("Generator: seed must be an integer, got 1.5", ember.Generator, 1.5)
  end)

  it("draws the same numbers from the same seed, and leaves the global stream alone", function()
    -- options with the generator g (none at all when g is nil: {} would
    -- read as an empty shape)
    local function O(g, t)
      t = t or {}
      t.generator = g
      if next(t) == nil then return nil end
      return t
    end
    local draws = {
      function(g) return ember.rand(5, O(g)) end,
      function(g) return ember.randn({2, 3}, O(g, {dtype = "float64"})) end,
      function(g) return ember.randint(1, 6, {4}, O(g)) end,
      function(g) return ember.randperm(6, O(g)) end,
      function(g) return ember.rand_like(ember.zeros(3), O(g)) end,
      function(g) return ember.randn_like(ember.zeros(3), O(g)) end,
      function(g) return ember.randint_like(ember.zeros(3), 9, O(g)) end,
      function(g) return ember.zeros(4):uniform_(-1, 1, O(g)) end,
      function(g) return ember.zeros(4):normal_(2, 3, O(g)) end,
      function(g) return ember.ones(6, 3):multinomial(2, O(g)) end,
      function(g) return ember.bernoulli(ember.full({4}, 0.5), O(g)) end,
      function(g) return ember.zeros(4):bernoulli_(0.5, O(g)) end,
      function(g) return ember.nn.F.dropout(ember.ones(8), 0.5, O(g)) end,
      function(g) return ember.nn.Dropout(0.5, O(g))(ember.ones(8)) end,
    }
    for k, draw in ipairs(draws) do
      ember.manual_seed(5)
      local before = ember.get_rng_state()
      local g1, g2 = ember.Generator(11), ember.Generator(11)
      local a, b = draw(g1), draw(g2)
      assert.is_true(a:equal(b), "draw " .. k .. ": same seed, same numbers")
      assert.is_true(g1:get_state().offset > 0, "draw " .. k .. ": the generator moved")
      assert.are.same(before, ember.get_rng_state(), "draw " .. k .. ": the global stream moved")
      -- and the global generator gives the numbers a Generator at its state would
      local g3 = ember.Generator(5)
      ember.manual_seed(5)
      local c = draw(nil)
      assert.is_true(draw(g3):equal(c), "draw " .. k .. ": the default stream is a generator")
    end
  end)

  it("get_state / set_state round-trip and replay a draw", function()
    local g = ember.Generator(3)
    ember.rand(10, {generator = g})
    local s = g:get_state()
    assert.are.same({seed = 3, offset = 10}, s)
    local a = ember.rand(4, {generator = g})
    assert.are.equal(g, g:set_state(s))
    assert.is_true(ember.rand(4, {generator = g}):equal(a))
    assert.are.equal(g, g:manual_seed(8))
    assert.are.same({seed = 8, offset = 0}, g:get_state())
    fails("set_state: state.offset must be an integer", g.set_state, g, {seed = 1, offset = "x"})
    fails("set_state: unknown field 'off'", g.set_state, g, {seed = 1, off = 2})
    assert.are.same({seed = 8, offset = 0}, g:get_state())
  end)

  it("ember.default_generator is the state's own generator", function()
    ember.default_generator:manual_seed(21)
    assert.are.equal(21, ember.initial_seed())
    ember.rand(3)
    assert.are.same(ember.get_rng_state(), ember.default_generator:get_state())
    ember.default_generator:set_state{seed = 4, offset = 2}
    assert.are.same({seed = 4, offset = 2}, ember.get_rng_state())
    local g = ember.default_generator
    ember.manual_seed(4)
    local a = ember.rand(3, {generator = g})
    ember.manual_seed(4)
    assert.is_true(ember.rand(3):equal(a))
  end)
end)

describe("drawing tokens from logits", function()
  local l = ember.tensor{{1, 3, 2, 3}, {0, 0, 0, 5}}
  local inf = math.huge

  it("filter_top_k keeps the k largest of each row, and every tie of the k-th", function()
    assert.are.same({{-inf, 3, -inf, 3}, {-inf, -inf, -inf, 5}}, ember.filter_top_k(l, 1):totable())
    assert.are.same({{-inf, 3, 2, 3}, {0, 0, 0, 5}}, ember.filter_top_k(l, 3):totable())
    assert.are.same(l:totable(), ember.filter_top_k(l, 10):totable())
    local d = ember.tensor({5, 1, 4}, {dtype = "float64"})
    assert.are.same({5, -inf, 4}, ember.filter_top_k(d, 2):totable())
    -- a strided view: the rows of l:t() are l's columns
    assert.is_false(l:t():is_contiguous())
    assert.are.same({{1, -inf}, {3, -inf}, {2, -inf}, {-inf, 5}}, ember.filter_top_k(l:t(), 1):totable())
    assert.are.same({0, 2}, ember.filter_top_k(ember.zeros(0, 2), 1):shape())
  end)

  it("filter_top_p keeps the tokens whose mass before them is under p", function()
    -- probabilities of row 1: .40 .40 .15 .05 (sorted): the mass before each is 0 .40 .80 .95
    assert.are.same({{1, 3, 2, 3}, {-inf, -inf, -inf, 5}}, ember.filter_top_p(l, 0.96):totable())
    assert.are.same({{-inf, 3, 2, 3}, {-inf, -inf, -inf, 5}}, ember.filter_top_p(l, 0.9):totable())
    -- the two tied best always stay together, and at least the best stays
    assert.are.same({{-inf, 3, -inf, 3}, {-inf, -inf, -inf, 5}}, ember.filter_top_p(l, 1e-9):totable())
    assert.are.same(l:totable(), ember.filter_top_p(l, 1):totable())
    local d = ember.tensor({0, math.log(3)}, {dtype = "float64"})  -- probabilities .25, .75
    assert.are.same({-inf, math.log(3)}, ember.filter_top_p(d, 0.75):totable())
    assert.are.same({0, math.log(3)}, ember.filter_top_p(d, 0.7500001):totable())
  end)

  it("sample_logits: temperature 0 is greedy, a seed repeats, filters apply", function()
    assert.are.same({{2}, {4}}, ember.sample_logits(l, {temperature = 0}):totable())
    assert.are.same({{2}, {4}}, ember.sample_logits(l, {top_k = 1}):totable())
    local wide = ember.randn(3, 50)
    local function draw(seed)
      return ember.sample_logits(wide, {temperature = 2, generator = ember.Generator(seed)}):totable()
    end
    assert.are.same(draw(1), draw(1))
    -- top_k 2 never draws outside each row's two largest
    local _, pos = ember.topk(wide, 2, -1)
    for s = 1, 20 do
      local got = ember.sample_logits(wide, {top_k = 2, generator = ember.Generator(s)})
      assert.is_true(pos:eq(got):any(-1):all():item())
    end
    local one = ember.sample_logits(ember.tensor{0, 10, 0}, {temperature = 0.1})
    assert.are.same({2}, one:totable())
  end)

  it("refuses bad arguments", function()
    fails("filter_top_k: expected a tensor as logits, got number", ember.filter_top_k, 3, 1)
    fails("filter_top_k: k must be >= 1, got 0", ember.filter_top_k, l, 0)
    fails("filter_top_k: expected float logits, got int64", ember.filter_top_k,
          ember.ones(3, {dtype = "int64"}), 1)
    fails("filter_top_p: p must be a number in (0, 1], got 0", ember.filter_top_p, l, 0)
    fails("filter_top_p: p must be a number in (0, 1], got 1.5", ember.filter_top_p, l, 1.5)
    fails("filter_top_p: expected logits with at least one element in the last dim",
          ember.filter_top_p, ember.zeros(2, 0), 0.5)
    fails("sample_logits: unknown option 'topk'", ember.sample_logits, l, {topk = 1})
    fails("sample_logits: temperature must be a finite number >= 0, got -1",
          ember.sample_logits, l, {temperature = -1})
    fails("sample_logits: top_p must be a number in (0, 1], got 2", ember.sample_logits, l, {top_p = 2})
    fails("sample_logits: top_k must be an integer, got 1.5", ember.sample_logits, l, {top_k = 1.5})
    fails("sample_logits: expected logits (V) or (B, V), got 3 dims", ember.sample_logits,
          ember.zeros(1, 2, 3))
  end)
end)
