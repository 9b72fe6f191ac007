--- bench/lstm_bench.lua -- milliseconds per training step of char-rnn's
-- default model: Embedding(65, 128) -> 2-layer LSTM(128, 128) -> Linear
-- head (65) -> cross-entropy, on a random batch of 50 sequences of 50
-- characters; one step is forward, loss, backward and zeroing the
-- gradients (no optimiser: the recurrence is what is measured).
-- Peer: bench/lstm_torch.py.  Output: "lstm_step <milliseconds>" (median
-- of 5 timed batches of steps, bench/timing.lua).
local ember = require "ember"
local nn = ember.nn
local timing = dofile((arg and arg[0] or "bench/lstm_bench.lua"):gsub("[^/]*$", "") .. "timing.lua")

local V, E, H, B, L = 65, 128, 128, 50, 50
ember.manual_seed(0)
local emb, lstm, head = nn.Embedding(V, E), nn.LSTM(E, H, {num_layers = 2}), nn.Linear(H, V)
local params = {}
for _, m in ipairs{emb, lstm, head} do
  for _, p in ipairs(m:parameters()) do params[#params + 1] = p end
end
local x, y = ember.randint(1, V, {B, L}), ember.randint(1, V, {B * L})

local step = timing.per_call(function(reps)
  for _ = 1, reps do
    for _, p in ipairs(params) do p.grad = nil end
    local out = lstm(emb(x))
    nn.functional.cross_entropy(head(out):view(B * L, V), y):backward()
  end
end, 1)
io.write(string.format("lstm_step %.4f\n", step * 1e3))
