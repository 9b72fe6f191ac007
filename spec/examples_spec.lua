-- Every script in examples/ runs to completion (CI runs them all).
local run = require "helpers.run"

-- The Fashion-MNIST examples train for minutes at full size; CI runs them
-- shortened (a few thousand images) and checks they learn all the same.
-- (6000 images, 2 epochs: about 74% for the CNN; the MLP is cheap enough for 20000.)
local ARGS = {["examples/fashion_mnist_cnn.lua"] = "--limit 6000 --epochs 2",
              ["examples/custom_loop.lua"] = "--limit 6000 --epochs 2",
              ["examples/fashion_mnist_mlp.lua"] = "--limit 20000 --epochs 2",
              ["examples/fashion_mnist_ddp.lua"] = "--limit 6000 --epochs 2",
              ["examples/nanogpt.lua"] = "--steps 30",
              -- the char models: a few dozen steps, 1 thread (a loaded CI box
              -- slows 2-thread steps by 10x), a short sample
              ["examples/char_gpt.lua"] = "--steps 40 --eval-every 20 --sample 300 --threads 1",
              ["examples/char_rnn.lua"] = "--steps 20 --print-every 5 --sample 300 --threads 1"}

-- The GPT-2 example runs on the test fixture (spec/fixtures/gpt2), with a
-- text prompt where ember.data.BPE is built in and as its ids otherwise.
local ember = require "ember"
local GPT2 = dofile("spec/fixtures/gpt2/reference.lua")
local function gpt2_prompt(i)
  if ember.data and ember.data.BPE then return run.q(GPT2.prompts[i]) end
  local ids = {}
  for j, id in ipairs(GPT2.ids[i]) do ids[j] = id + 1 end
  return "--ids " .. run.q(table.concat(ids, " "))
end
ARGS["examples/gpt2.lua"] = "spec/fixtures/gpt2 " .. gpt2_prompt(3) ..
  " --max-new-tokens 20 --seed 7 --top-k 40 --top-p 0.9 --temperature 0.9"
-- image_folder.lua on a small generated folder: 2 classes (reddish and
-- bluish noise) of 12 RGB images each, of several sizes (--size resizes)
local IMAGE_DIR = os.tmpname()
os.remove(IMAGE_DIR)
do
  local gen = ember.Generator(3)
  for c, name in ipairs({"blue", "red"}) do
    assert(os.execute("mkdir -p '" .. IMAGE_DIR .. "/" .. name .. "'"))
    for i = 1, 12 do
      local h, w = 10 + i, 20 - i // 2
      local x = ember.rand({3, h, w}, {generator = gen}) * 0.3
      x[c == 1 and 3 or 1]:add_(0.7)   -- blue: channel 3 bright; red: channel 1
      ember.data.write_image(("%s/%s/%02d.png"):format(IMAGE_DIR, name, i), x)
    end
  end
end
teardown(function() os.execute("rm -rf '" .. IMAGE_DIR .. "'") end)
ARGS["examples/image_folder.lua"] = "--dir " .. run.q(IMAGE_DIR) .. " --epochs 8 --size 16"
local outputs = {}

local function run_example(path)
  if not outputs[path] then
    local out, rc = run.sh(run.ember .. " " .. path .. " " .. (ARGS[path] or ""))
    assert.are.equal(0, rc, out)
    outputs[path] = out
  end
  return outputs[path]
end

describe("examples", function()
  local p = io.popen("ls examples/*.lua")
  for path in p:lines() do
    it(path .. " runs", function()
      assert.is_true(#run_example(path) > 0)
    end)
  end
  p:close()
end)

describe("the Fashion-MNIST examples, shortened", function()
  local function accuracy(out, pattern)
    local acc = tonumber(out:match(pattern))
    assert.is_not_nil(acc, out)
    return acc
  end

  it("fashion_mnist_cnn.lua learns, saves, reloads and names classes", function()
    local out = run_example("examples/fashion_mnist_cnn.lua")
    assert.truthy(out:find("Total params: 93,322", 1, true), out)
    assert.is_true(accuracy(out, "test accuracy: ([%d%.]+)") > 0.70, out)
    -- five predictions by the reloaded model, each naming a class
    local names = 0
    for predicted, truth in out:gmatch("image %d: (%S[^\n]-)%s+%(%d+%%%), truly ([^\n]+)") do
      names = names + 1
    end
    assert.are.equal(5, names, out)
  end)

  it("image_folder.lua learns a generated folder, reloads and names classes", function()
    local out = run_example("examples/image_folder.lua")
    assert.truthy(out:find("24 images of 2 classes: blue, red", 1, true), out)
    assert.truthy(out:find("Epoch 8/8", 1, true), out)
    assert.is_true(accuracy(out, "validation accuracy: ([%d%.]+)") >= 0.75, out)
    local lines = 0
    for file, predicted, truth in out:gmatch("  (%a+/%d+%.png): (%a+) %(%d+%%%), truly (%a+)") do
      assert.equal(file:match("^%a+"), truth)
      assert.truthy(predicted == "blue" or predicted == "red", out)
      lines = lines + 1
    end
    assert.equal(4, lines, out)   -- the 4 held-out images (a fifth of 24)
  end)

  it("image_folder.lua refuses a folder that is not an image set", function()
    local out, rc = run.sh(run.ember .. " examples/image_folder.lua --dir " ..
                           run.q(IMAGE_DIR .. "/red"))
    assert.are.equal(2, rc, out)
    assert.truthy(out:find("image_folder.lua: '" .. IMAGE_DIR .. "/red' has no class folders", 1, true), out)
    assert.is_nil(out:find("traceback", 1, true), out)
    out, rc = run.sh(run.ember .. " examples/image_folder.lua --size 6")
    assert.are.equal(2, rc, out)
    assert.truthy(out:find("image_folder.lua: --size must be a multiple of 4, got 6", 1, true), out)
  end)

  it("fashion_mnist_mlp.lua learns", function()
    local out = run_example("examples/fashion_mnist_mlp.lua")
    assert.is_true(accuracy(out, "test accuracy: ([%d%.]+)") > 0.70, out)
  end)

  it("fashion_mnist_ddp.lua learns in a world of one", function()
    local out = run_example("examples/fashion_mnist_ddp.lua")
    assert.truthy(out:find("1 rank(s)", 1, true), out)
    assert.is_true(accuracy(out, "test accuracy: ([%d%.]+)") > 0.70, out)
    assert.truthy(out:find("reloaded on every rank: the same predictions", 1, true), out)
  end)

  it("fashion_mnist_ddp.lua learns under mpirun -np 2", function()
    local cmd, why = run.mpirun(2, run.ember .. " examples/fashion_mnist_ddp.lua --limit 6000 --epochs 3")
    if not cmd then pending(why) return end
    local out, rc = run.sh(cmd)
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("2 rank%(s%), %d+ thread%(s%) each, mpi"), out)
    assert.is_true(accuracy(out, "test accuracy: ([%d%.]+)") > 0.70, out)
    -- rank 1 alone prints, rank 2 loads what rank 1 saved
    local _, lines = out:gsub("epoch 1/3", "")
    assert.are.equal(1, lines, out)
    assert.truthy(out:find("reloaded on every rank: the same predictions", 1, true), out)
  end)

  it("custom_loop.lua learns, epoch by epoch", function()
    local out = run_example("examples/custom_loop.lua")
    local accs = {}
    for a in out:gmatch("test accuracy ([%d%.]+)") do accs[#accs + 1] = tonumber(a) end
    assert.are.equal(2, #accs, out)
    assert.is_true(accs[2] > 0.70, out)
  end)
end)

describe("examples converge", function()
  it("xor.lua learns XOR", function()
    local out, rc = run.sh(run.ember .. " examples/xor.lua")
    assert.are.equal(0, rc, out)
    local loss = tonumber(out:match("final loss ([%d%.e%-]+)"))
    assert.is_true(loss ~= nil and loss < 0.05, out)
    local want = {["0 xor 0"] = 0, ["0 xor 1"] = 1, ["1 xor 0"] = 1, ["1 xor 1"] = 0}
    for case, target in pairs(want) do
      local p = tonumber(out:match(case .. " %-> ([%d%.]+)"))
      assert.is_true(p ~= nil and math.abs(p - target) < 0.2, case .. "\n" .. out)
    end
  end)

  it("regression.lua recovers the line", function()
    local out, rc = run.sh(run.ember .. " examples/regression.lua")
    assert.are.equal(0, rc, out)
    local w, b = out:match("recovered: y = ([%d%.%-]+) x ([%+%-][%d%.]+)")
    assert.is_true(math.abs(tonumber(w) - 3) < 0.05, out)
    assert.is_true(math.abs(tonumber(b) + 2) < 0.05, out)
  end)
end)

describe("the character models learn and sample", function()
  --- The sample between the example's two "---" lines: n characters, each
  -- one of the corpus's (the fortunes files).
  local function check_sample(out, n)
    local text = out:match("%-%-%- %d+ characters sampled[^\n]*\n(.*)\n%-%-%- end of sample")
    assert.is_not_nil(text, out)
    assert.are.equal(n, utf8.len(text), out)
    local vocab = dofile("examples/char_gpt/fortunes.lua").text()
    for c in text:gmatch(utf8.charpattern) do
      assert.truthy(vocab:find(c, 1, true), "not in the corpus: " .. c)
    end
  end

  it("char_gpt.lua: the losses fall, the sample has 300 characters", function()
    local out = run_example("examples/char_gpt.lua")
    local train, val = {}, {}
    for t, v in out:gmatch("step %d+: train loss ([%d%.]+), val loss ([%d%.]+)") do
      train[#train + 1], val[#val + 1] = tonumber(t), tonumber(v)
    end
    assert.are.equal(3, #train, out)   -- steps 0, 20, 40
    assert.is_true(train[3] < train[1] - 1.0, out)   -- 4.7 at the start
    assert.is_true(val[3] < val[1] - 1.0, out)
    check_sample(out, 300)
  end)

  it("char_rnn.lua: the loss falls, the sample has 300 characters", function()
    local out = run_example("examples/char_rnn.lua")
    local losses = {}
    for l in out:gmatch("train_loss = ([%d%.]+)") do losses[#losses + 1] = tonumber(l) end
    assert.are.equal(4, #losses, out)   -- the means of steps 1-5, ..., 16-20
    assert.is_true(losses[4] < losses[1] - 0.5, out)
    assert.is_not_nil(out:match("val_loss = [%d%.]+"), out)
    check_sample(out, 300)
  end)
end)

describe("the GPT-2 example on the fixture", function()
  it("gpt2.lua --logits prints PyTorch's logits of the last position, %.9g a line", function()
    local out, rc = run.sh(run.ember .. " examples/gpt2.lua spec/fixtures/gpt2 --logits " .. gpt2_prompt(3))
    assert.are.equal(0, rc, out)
    local want, n = GPT2.last_logits[3], 0
    for line in out:gmatch("[^\n]+") do
      n = n + 1
      local v = tonumber(line)
      assert.is_not_nil(v, line)
      assert.is_true(math.abs(v - want[n]) <= 1e-5 * math.max(1, math.abs(want[n])),
                     ("logit %d: %s, PyTorch %.9g"):format(n, line, want[n]))
    end
    assert.are.equal(#want, n)
  end)

  it("gpt2.lua generates, the same text for the same seed", function()
    local out = run_example("examples/gpt2.lua")
    assert.truthy(out:find("20 tokens in", 1, true), out)
    local again, rc = run.sh(run.ember .. " examples/gpt2.lua " .. ARGS["examples/gpt2.lua"])
    assert.are.equal(0, rc, again)
    assert.are.equal(out:gsub("\n[^\n]*tokens/s%)\n$", ""), (again:gsub("\n[^\n]*tokens/s%)\n$", "")))
    local bad, brc = run.sh(run.ember .. " examples/gpt2.lua spec/fixtures/gpt2 --top-q 1")
    assert.are_not.equal(0, brc)
    assert.truthy(bad:find("gpt2.lua: unknown option --top-q", 1, true), bad)
  end)
end)

-- Scripts' own options (examples/lib/options.lua): parsed in both
-- spellings, or refused with the list of options, never ignored.
describe("the examples' options", function()
  local parse = dofile("examples/lib/options.lua")
  local KNOWN = {["--limit"] = {"integer"}, ["--epochs"] = {"integer", 5}, ["--bf16"] = {"flag"},
                 ["--lr"] = {"number", 0.1}, ["--name"] = {"string"}}

  it("reads --name value and --name=value, flags, and fills in defaults", function()
    local opt = parse("x.lua", {"--limit=3000", "--lr", "1e-3", "--bf16", "--name=a=b"}, KNOWN)
    assert.are.same({["--limit"] = 3000, ["--epochs"] = 5, ["--bf16"] = true,
                     ["--lr"] = 1e-3, ["--name"] = "a=b"}, opt)
  end)

  for _, case in ipairs({
    {"--limt 3000", "fashion_mnist_mlp.lua: unknown option --limt (options: --epochs INTEGER, --limit INTEGER)"},
    {"--limit=3e", "fashion_mnist_mlp.lua: --limit needs an integer, got '3e'"},
    {"--limit 30 --epochs", "fashion_mnist_mlp.lua: --epochs needs a value"},
    {"3000", "fashion_mnist_mlp.lua: unexpected argument 3000"}}) do
    it("refuses " .. case[1], function()
      local out, rc = run.sh(run.ember .. " examples/fashion_mnist_mlp.lua " .. case[1])
      assert.are.equal(2, rc, out)
      assert.truthy(out:find(case[2], 1, true), out)
      assert.is_nil(out:find("traceback", 1, true), out)
    end)
  end

  -- every script, options of its own or none: an unknown one stops it
  -- before any work, exit status 2, the script named, no traceback
  for f in io.popen("ls examples/*.lua"):lines() do
    local script = f:match("[^/]+$")
    it(script .. " refuses an unknown option", function()
      local out, rc = run.sh(run.ember .. " " .. f .. " --no-such-option=3000")
      assert.are.equal(2, rc, out)
      assert.truthy(out:find(script .. ": unknown option --no-such-option=3000 (", 1, true), out)
      assert.is_nil(out:find("traceback", 1, true), out)
    end)
  end

  it("gpt2.lua: its DIR and prompt, --name=value, and values out of range refused", function()
    local out, rc = run.sh(run.ember .. " examples/gpt2.lua spec/fixtures/gpt2 --ids '1 2 3'" ..
                           " --max-new-tokens=3 --top-k=40 --seed=1")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("3 tokens in", 1, true), out)
    for _, case in ipairs({{"", "gpt2.lua: no DIR given"},
                           {"a b c", "gpt2.lua: unexpected argument c"},
                           {"a --top-p 2", "gpt2.lua: --top-p must be in (0, 1], got 2"},
                           {"a --temperature=-1", "gpt2.lua: --temperature must be >= 0, got -1"},
                           {"a --device tpu", "gpt2.lua: --device must be cpu or cuda, got tpu"},
                           {"a b --ids 1", "gpt2.lua: a prompt or --ids, not both"}}) do
      out, rc = run.sh(run.ember .. " examples/gpt2.lua " .. case[1])
      assert.are.equal(2, rc, out)
      assert.truthy(out:find(case[2], 1, true), out)
    end
  end)

  it("refuses a value given to a flag", function()
    local out, rc = run.sh(run.ember .. " examples/char_gpt.lua --steps 1 --bf16=yes")
    assert.are.equal(2, rc, out)
    assert.truthy(out:find("char_gpt.lua: --bf16 takes no value", 1, true), out)
  end)
end)

