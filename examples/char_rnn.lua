-- char_rnn.lua: Karpathy's char-rnn (Torch7, 2015) with its defaults on
-- the fortunes corpus (examples/char_gpt/fortunes.lua): characters through
-- an Embedding of 128 into a 2-layer nn.LSTM of 128 and a Linear head,
-- sequences of 50, batches of 50, RMSprop at 2e-3 with char-rnn's decay
-- rate 0.95 (its optim.rmsprop is PyTorch's and Ember's RMSprop), the
-- gradients clipped at 5.  It prints the training loss (the mean since the
-- last print), the validation loss at the end, then samples one character
-- at a time carrying the LSTM's state {h, c}, so a character costs O(1).
--
-- Where it differs from char-rnn, said here: char-rnn fed one-hot vectors
-- (an Embedding is the same map, learned); it walked the text in order
-- carrying the state from batch to batch, this draws random windows
-- (ember.data.windows) and starts each from a zero state; it decayed the
-- rate by 0.97 an epoch after 10 epochs, this keeps it (runs are short).
--
--   ./ember examples/char_rnn.lua                  (1000 steps, a few minutes)
--   ./ember examples/char_rnn.lua --steps 100 --print-every 10 --sample 200
-- Options: --steps N (1000), --print-every N (50), --sample N characters
-- (500), --seed N (123, char-rnn's), --threads N (Ember's default: the cores).
local ember = require "ember"
local nn = ember.nn
local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "examples"
local fortunes = dofile(here .. "/char_gpt/fortunes.lua")

local opt = dofile(here .. "/lib/options.lua")("char_rnn.lua", arg, {
  ["--steps"] = {"integer", 1000}, ["--print-every"] = {"integer", 50},
  ["--sample"] = {"integer", 500}, ["--seed"] = {"integer", 123}, ["--threads"] = {"integer"}})
if opt["--threads"] then ember.set_num_threads(opt["--threads"]) end
local rnn_size, num_layers, seq_length, batch_size = 128, 2, 50, 50
local learning_rate, decay_rate, grad_clip = 2e-3, 0.95, 5

local tok, train_data, val_data = fortunes.load()
local V = tok.vocab_size
print(("%d characters, vocabulary of %d, %d threads"):format(
  train_data:size(1) + val_data:size(1), V, ember.get_num_threads()))

ember.manual_seed(opt["--seed"])
local CharRNN = nn.Module:extend("CharRNN")
function CharRNN:init()
  self.embed = nn.Embedding(V, rnn_size)
  self.lstm = nn.LSTM(rnn_size, rnn_size, {num_layers = num_layers})
  self.head = nn.Linear(rnn_size, V)
end
--- x (B, L) ids -> logits (B, L, V) and the final state {h, c}.
function CharRNN:forward(x, state)
  local out, s = self.lstm(self.embed(x), state)
  return self.head(out), s
end

local model = CharRNN()
local n_params = 0
for _, p in ipairs(model:parameters()) do n_params = n_params + p:numel() end
print(("number of parameters: %d"):format(n_params))
local optimizer = ember.optim.RMSprop(model:parameters(), {lr = learning_rate, alpha = decay_rate})

local function loss_of(x, y)
  local logits = model(x)
  return nn.functional.cross_entropy(logits:view(-1, V), y:view(-1))
end

local t0, sum, count = ember.clock(), 0, 0
for step = 1, opt["--steps"] do
  local x, y = ember.data.windows(train_data, seq_length, batch_size)
  local loss = loss_of(x, y)
  optimizer:zero_grad()
  loss:backward()
  nn.utils.clip_grad_norm_(model:parameters(), grad_clip)
  optimizer:step()
  sum, count = sum + loss:item(), count + 1
  if step % opt["--print-every"] == 0 or step == opt["--steps"] then
    print(("%d/%d, train_loss = %.4f (%.1f s)"):format(step, opt["--steps"], sum / count,
                                                       ember.clock() - t0))
    sum, count = 0, 0
  end
end

model:eval()
local val = ember.no_grad(function()
  local total = 0
  for _ = 1, 10 do total = total + loss_of(ember.data.windows(val_data, seq_length, batch_size)):item() end
  return total / 10
end)
print(("val_loss = %.4f"):format(val))

-- sample.lua: prime with a newline, then feed each drawn character back
-- with the state, temperature 1 as char-rnn's default
local n, g = opt["--sample"], ember.Generator(opt["--seed"])
t0 = ember.clock()
local out = ember.no_grad(function()
  local ids, state, x = {}, nil, tok:encode("\n"):view(1, 1)
  for i = 1, n do
    local logits
    logits, state = model(x, state)
    x = ember.multinomial(nn.functional.softmax(logits:view(1, V), -1), 1, {generator = g})
    ids[i] = x:item()
  end
  return tok:decode(ids)
end)
print(("--- %d characters sampled in %.2f s ---"):format(n, ember.clock() - t0))
print(out)
print("--- end of sample ---")
