-- gpt2.lua: text from a GPT-2 checkpoint in Hugging Face's layout (a
-- directory holding config.json, model.safetensors, vocab.json and
-- merges.txt, as `huggingface-cli download openai-community/gpt2` makes
-- it), sampled with temperature, top-k and top-p through a key/value
-- cache (examples/gpt2/model.lua).
--
--   ./ember examples/gpt2.lua DIR ["prompt"] [options]
--   ./ember examples/gpt2.lua DIR --logits "prompt"
--
-- --logits prints the logits of the prompt's last position, one a line
-- (%.9g), to compare with PyTorch's.  Options: --max-new-tokens N (50),
-- --temperature X (1; 0 is greedy), --top-k N (50, 0 for none), --top-p X
-- (1: none), --seed N (the draws of a seed repeat), --device cpu|cuda,
-- --ids "i j ..." (the prompt as token ids, Ember's: GPT-2's plus one,
-- instead of text).
local ember = require "ember"
local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "examples"
local gpt2 = dofile(here .. "/gpt2/model.lua")

-- The command line (examples/lib/options.lua): any option not listed, a
-- missing or bad value, or a second prompt stops the script with the list.
local opt, fail = dofile(here .. "/lib/options.lua")("gpt2.lua", arg, {
  ["--logits"] = {"flag"}, ["--max-new-tokens"] = {"integer", 50}, ["--temperature"] = {"number", 1},
  ["--top-k"] = {"integer", 50}, ["--top-p"] = {"number", 1}, ["--seed"] = {"integer"},
  ["--device"] = {"string", "cpu"}, ["--ids"] = {"string"}}, {"DIR", "[prompt]"})
opt.dir, opt.prompt = opt[1], opt[2]
for _, name in ipairs({"--max-new-tokens", "--top-k", "--seed", "--temperature"}) do
  local v = opt[name]
  if v and not (v >= 0 and v < math.huge) then fail("%s must be >= 0, got %s", name, v) end
end
if not (opt["--top-p"] > 0 and opt["--top-p"] <= 1) then fail("--top-p must be in (0, 1], got %s", opt["--top-p"]) end
if opt["--device"] ~= "cpu" and opt["--device"] ~= "cuda" then
  fail("--device must be cpu or cuda, got %s", opt["--device"])
end
if opt.prompt and opt["--ids"] then fail("a prompt or --ids, not both") end
local tok = ember.data and ember.data.BPE and
  ember.data.BPE(opt.dir .. "/vocab.json", opt.dir .. "/merges.txt")
local ids
if opt["--ids"] then
  local list = {}
  for w in opt["--ids"]:gmatch("[^%s,]+") do
    list[#list + 1] = math.tointeger(tonumber(w)) or error("gpt2.lua: --ids: not an integer: " .. w, 0)
  end
  ids = ember.tensor(list, {dtype = "int64"})
else
  if not tok then error("gpt2.lua: this build has no ember.data.BPE; give the prompt with --ids", 0) end
  ids = tok:encode(opt.prompt or "Hello, I'm a language model,")
end
if ids:numel() == 0 then error("gpt2.lua: the prompt has no tokens", 0) end

local model = gpt2.load(opt.dir)
if opt["--device"] == "cuda" then
  model:cuda()
  ids = ids:cuda()
end

if opt["--logits"] then
  local logits = ember.no_grad(function() return model(ids:view(1, -1), nil, true) end)
  local out = {}
  for i, v in ipairs(logits:view(-1):double():totable()) do out[i] = ("%.9g"):format(v) end
  print(table.concat(out, "\n"))
  return
end

local generator = opt["--seed"] and ember.Generator(opt["--seed"])
local t0 = ember.clock()
local out = model:generate(ids, opt["--max-new-tokens"], {temperature = opt["--temperature"],
  top_k = opt["--top-k"] > 0 and opt["--top-k"] or nil,
  top_p = opt["--top-p"] < 1 and opt["--top-p"] or nil, generator = generator}):cpu()
local dt = ember.clock() - t0
if tok then
  print(tok:decode(out))
else
  print(table.concat(out:totable(), " "))
end
io.stderr:write(("%d tokens in %.2f s (%.1f tokens/s)\n"):format(opt["--max-new-tokens"], dt,
  opt["--max-new-tokens"] / math.max(dt, 1e-9)))
