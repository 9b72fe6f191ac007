-- float32 matmul through every path of core/cpu/matmul.c: the AVX-512
-- kernels for small shapes (bcast: b row-major, K <= 256; dot: a row-major
-- and b a transposed view, M * K <= 131072), OpenBLAS for the rest, ragged
-- tile edges, strided operands, batches and threads.  On a CPU without
-- AVX-512 every case runs through OpenBLAS and must pass the same way.
--
-- Reference: the same product in float64 (OpenBLAS's dgemm) from the same
-- float32 values.  Tolerance per element, with S = sum over k of
-- |a_ik b_kj|: |c - ref| <= 4e-7 * K * S + 1e-30 (float32 sums of K terms;
-- the bound is loose by design, an indexing mistake is off by O(S)).
local ember = require "ember"

--- a [M,K] and b [K,N], float32, laid out as asked: "row" (contiguous),
-- "col" (the transpose of a contiguous tensor) or "wide" (a narrow of a
-- wider row-major tensor: leading dimension > columns).
local function operand(rows, cols, layout, seed)
  ember.manual_seed(seed)
  if layout == "col" then return ember.randn(cols, rows):t() end
  if layout == "wide" then return ember.randn(rows, cols + 5):narrow(2, 3, cols) end
  return ember.randn(rows, cols)
end

local function check_product(a, b, what)
  local c = a:matmul(b)
  local ref = a:double():matmul(b:double())
  local bound = a:double():abs():matmul(b:double():abs())
  local K = a:size(a:dim())
  assert.are.same(ref:shape(), c:shape(), what .. ": shape")
  assert.are.equal("float32", c.dtype)
  assert.is_true(c:is_contiguous(), what .. ": contiguous result")
  local err = (c:double() - ref):abs() - bound * (4e-7 * K) - 1e-30
  local worst = err:max():item()
  if worst > 0 then
    error(("%s: an element is off by %g beyond the tolerance"):format(what, worst), 2)
  end
  return c
end

describe("float32 matmul", function()
  local threads
  setup(function() threads = ember.get_num_threads() end)
  teardown(function() ember.set_num_threads(threads) end)
  before_each(function() ember.set_num_threads(1) end)

  -- {M, K, N}: full tiles, ragged rows (M % 8, M < 8), ragged columns
  -- (N % 48 with 1, 2 or 3 vectors, N % 16), K = 1, K not a multiple of 16
  local shapes = {
    {32, 784, 128}, {784, 32, 128}, {128, 32, 784}, {8, 16, 48}, {13, 5, 7},
    {9, 1, 50}, {17, 31, 49}, {1, 7, 100}, {100, 256, 3}, {7, 33, 5},
    {33, 100, 9}, {4, 16, 4}, {64, 32, 10}, {2, 3, 1}, {1, 1, 1},
  }
  local layouts = {
    {"row", "row"},     -- bcast (NN)
    {"col", "row"},     -- bcast (TN: a weight gradient)
    {"wide", "wide"},   -- bcast, leading dimensions > columns
    {"row", "col"},     -- dot (a linear layer's x @ w:t())
    {"wide", "col"},    -- dot, a strided
    {"col", "col"},     -- OpenBLAS
  }
  for _, l in ipairs(layouts) do
    it(("is right for a %s-major and b %s-major"):format(l[1], l[2]), function()
      for si, s in ipairs(shapes) do
        local M, K, N = s[1], s[2], s[3]
        local a, b = operand(M, K, l[1], si), operand(K, N, l[2], 100 + si)
        check_product(a, b, ("[%d,%d] x [%d,%d]"):format(M, K, K, N))
      end
    end)
  end

  it("is right past the kernels' limits (K panels, OpenBLAS again)", function()
    -- b row-major with K > 256: bcast in K panels while M * N <= 262144
    -- (a folded weight gradient), OpenBLAS beyond; dot with M * K > 131072
    check_product(operand(20, 300, "row", 1), operand(300, 30, "row", 2), "K 300")
    check_product(operand(128, 768, "col", 5), operand(768, 512, "row", 6), "K 768 panels")
    check_product(operand(520, 300, "row", 7), operand(300, 510, "row", 8), "M*N 265200")
    check_product(operand(200, 700, "row", 3), operand(700, 6, "col", 4), "M*K 140000")
    -- row blocks: bcast with C past 262144 elements (K <= 512), dot-layout
    -- b copied row-major from 256 rows (a sequence's projection), the copy
    -- refused for a b over 131072 elements (dot in row blocks)
    check_product(operand(1100, 300, "row", 9), operand(300, 250, "row", 10), "bcast row blocks")
    check_product(operand(2500, 128, "row", 11), operand(128, 96, "col", 12), "dot, b copied")
    check_product(operand(300, 64, "wide", 13), operand(64, 40, "col", 14), "dot, b copied, 300 rows")
    check_product(operand(600, 300, "row", 15), operand(300, 500, "col", 16), "dot row blocks")
  end)

  it("is right for batches and broadcast batches", function()
    ember.manual_seed(7)
    check_product(ember.randn(3, 5, 7), ember.randn(3, 7, 9), "batched")
    check_product(ember.randn(2, 3, 10, 6), ember.randn(6, 11), "batched x matrix")
    check_product(ember.randn(4, 6, 10):transpose(2, 3), ember.randn(4, 6, 12), "batched TN")
    check_product(ember.randn(4, 10, 6), ember.randn(4, 12, 6):transpose(2, 3), "batched NT")
  end)

  it("gives the same bits on one thread and on two", function()
    local cases = {
      {operand(784, 32, "col", 1), operand(32, 128, "row", 2)},    -- bcast, parallel
      {operand(32, 784, "row", 3), operand(784, 128, "col", 4)},   -- dot, parallel
      {operand(101, 200, "row", 5), operand(200, 67, "row", 6)},   -- ragged, parallel
    }
    for i, c in ipairs(cases) do
      ember.set_num_threads(1)
      local one = check_product(c[1], c[2], "case " .. i .. ", one thread")
      ember.set_num_threads(2)
      local two = check_product(c[1], c[2], "case " .. i .. ", two threads")
      assert.is_true(one:equal(two), "case " .. i)
    end
  end)

  it("gives zeros for K = 0 and empty results for M or N = 0", function()
    local c = ember.zeros(3, 0):matmul(ember.zeros(0, 4))
    assert.are.same({{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}}, c:totable())
    assert.are.same({0, 4}, ember.zeros(0, 5):matmul(ember.zeros(5, 4)):shape())
    assert.are.same({3, 0}, ember.zeros(3, 5):matmul(ember.zeros(5, 0)):shape())
  end)

  it("propagates NaN and infinity as a sum would", function()
    local a = ember.tensor({{1, 2}, {3, 4}})
    local b = ember.tensor({{0 / 0, math.huge, 1}, {1, 1, 1}})
    for _, bb in ipairs{b, b:t():contiguous():t()} do     -- bcast, then dot
      local c = a:matmul(bb):totable()
      assert.is_true(c[1][1] ~= c[1][1] and c[2][1] ~= c[2][1])
      assert.are.same({math.huge, math.huge}, {c[1][2], c[2][2]})
      assert.are.same({3, 7}, {c[1][3], c[2][3]})
    end
  end)
end)

describe("matmul's backward on a batched a and a matrix b", function()
  -- a Linear on (B, T, C): the weight gradient is one GEMM of the folded
  -- rows, which must equal the sum of the per-batch products
  local function per_batch(a, g)
    local s = ember.zeros(a:size(3), g:size(3), {dtype = a.dtype})
    for i = 1, a:size(1) do s = s + a:select(1, i):t():matmul(g:select(1, i)) end
    return s
  end

  for _, layout in ipairs{"contiguous", "transposed"} do
    it("folds the batch for a " .. layout .. " a and w:t()", function()
      ember.manual_seed(3)
      local a = layout == "contiguous" and ember.randn(3, 5, 4, {dtype = "float64"})
                or ember.randn(3, 4, 5, {dtype = "float64"}):transpose(2, 3)
      a:requires_grad_()
      local w = ember.randn(6, 4, {dtype = "float64"}):requires_grad_()
      local g = ember.randn(3, 5, 6, {dtype = "float64"})
      a:matmul(w:t()):backward(g)
      assert.is_true((w.grad - per_batch(a:detach(), g):t()):abs():max():item() < 1e-12)
      assert.is_true(w.grad:is_contiguous())
      assert.is_true((a.grad - g:matmul(w:detach())):abs():max():item() < 1e-12)
    end)
  end

  it("folds the batch for a plain b and 1-D b", function()
    ember.manual_seed(4)
    local a = ember.randn(2, 3, 5, 4, {dtype = "float64"}):requires_grad_()
    local b = ember.randn(4, 7, {dtype = "float64"}):requires_grad_()
    local g = ember.randn(2, 3, 5, 7, {dtype = "float64"})
    a:matmul(b):backward(g)
    local a3, g3 = a:detach():reshape(6, 5, 4), g:reshape(6, 5, 7)
    assert.is_true((b.grad - per_batch(a3, g3)):abs():max():item() < 1e-12)
    local v = ember.randn(4, {dtype = "float64"}):requires_grad_()
    local gv = ember.randn(2, 3, 5, {dtype = "float64"})
    a:matmul(v):backward(gv)
    local want = per_batch(a3, gv:reshape(6, 5, 1)):view(4)
    assert.is_true((v.grad - want):abs():max():item() < 1e-12)
  end)
end)
