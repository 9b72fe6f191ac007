-- examples/char_gpt/fortunes.lua: the corpus of examples/char_gpt.lua,
-- examples/char_rnn.lua and bench/gpt_bench.lua: every plain-text file of
-- Debian's fortunes package (/usr/share/games/fortunes/, about 2.6 MB; not
-- the .dat indexes nor the .u8 links to the same files), in name order,
-- the % lines that separate the fortunes dropped, encoded a character a
-- token (ember.data.chars) and split 90/10 into training and validation
-- ids.  bench/gpt_torch.py reads the same files by the same rule.
local ember = require "ember"

local M = {dir = "/usr/share/games/fortunes"}

--- The corpus, file by file: a list of the files' texts in name order.
local function parts(dir)
  dir = dir or M.dir
  local p = assert(io.popen("ls " .. dir .. " 2>/dev/null"))
  local names = {}
  for name in p:lines() do
    if not name:find(".", 1, true) then names[#names + 1] = name end
  end
  p:close()
  if #names == 0 then
    error(dir .. " holds no fortunes: apt-get install fortunes (make deps does)", 3)
  end
  table.sort(names)
  local out = {}
  for i, name in ipairs(names) do
    local f = assert(io.open(dir .. "/" .. name, "rb"))
    -- "%" alone on a line ends a fortune: keep the blank line between two
    out[i] = f:read("a"):gsub("\n%%\n", "\n\n"):gsub("^%%\n", "")
    f:close()
  end
  return out
end

--- The corpus text: the files' contents joined in name order.
function M.text(dir)
  return table.concat(parts(dir))
end

--- tok, train ids, val ids (1-d int64): the corpus tokenized by
-- ember.data.chars (a token per distinct character), split 90/10.
function M.load(dir)
  local tok, data = ember.data.chars(M.text(dir))
  local n = data:size(1)
  local cut = n * 9 // 10
  return tok, data[{ {1, cut} }], data[{ {cut + 1, n} }]
end

return M
