--- ember.train.plot: history:plot(path), the loss and metric curves of a
-- fit as a PNG, with no plotting stack: the curves, axes, ticks and labels
-- are rasterised here (a 5x7 bitmap font for the text) and
-- ember._png_encode (bindings/lua_io.c, zlib) writes the file.
local ember = require "ember"
local fit = require "ember.train.fit"
local T = require "ember.train.common"
local blame = require "ember.blame"
local files = require "ember.files"

-- {======================================================================
-- A 5x7 bitmap font: lower-case letters, digits and what numbers and names
-- need.  Each glyph is 7 rows of 5 columns, '#' set.
-- =======================================================================

local GLYPHS = {
  ["0"] = ".###. #...# #..## #.#.# ##..# #...# .###.",
  ["1"] = "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
  ["2"] = ".###. #...# ....# ...#. ..#.. .#... #####",
  ["3"] = "####. ....# ....# .###. ....# ....# ####.",
  ["4"] = "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
  ["5"] = "##### #.... ####. ....# ....# #...# .###.",
  ["6"] = "..##. .#... #.... ####. #...# #...# .###.",
  ["7"] = "##### ....# ...#. ..#.. .#... .#... .#...",
  ["8"] = ".###. #...# #...# .###. #...# #...# .###.",
  ["9"] = ".###. #...# #...# .#### ....# ...#. .##..",
  ["."] = "..... ..... ..... ..... ..... .##.. .##..",
  ["-"] = "..... ..... ..... .###. ..... ..... .....",
  ["+"] = "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
  ["_"] = "..... ..... ..... ..... ..... ..... #####",
  [":"] = "..... .##.. .##.. ..... .##.. .##.. .....",
  ["/"] = "....# ...#. ...#. ..#.. .#... .#... #....",
  ["("] = "...#. ..#.. .#... .#... .#... ..#.. ...#.",
  [")"] = ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
  [" "] = "..... ..... ..... ..... ..... ..... .....",
  a = "..... ..... .###. ....# .#### #...# .####",
  b = "#.... #.... #.##. ##..# #...# #...# ####.",
  c = "..... ..... .###. #.... #.... #...# .###.",
  d = "....# ....# .##.# #..## #...# #...# .####",
  e = "..... ..... .###. #...# ##### #.... .###.",
  f = "..##. .#..# .#... ###.. .#... .#... .#...",
  g = "..... .#### #...# #...# .#### ....# .###.",
  h = "#.... #.... #.##. ##..# #...# #...# #...#",
  i = "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
  j = "...#. ..... ..##. ...#. ...#. #..#. .##..",
  k = "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
  l = ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  m = "..... ..... ##.#. #.#.# #.#.# #...# #...#",
  n = "..... ..... #.##. ##..# #...# #...# #...#",
  o = "..... ..... .###. #...# #...# #...# .###.",
  p = "..... ..... ####. #...# ####. #.... #....",
  q = "..... ..... .##.# #..## .#### ....# ....#",
  r = "..... ..... #.##. ##..# #.... #.... #....",
  s = "..... ..... .###. #.... .###. ....# ####.",
  t = ".#... .#... ###.. .#... .#... .#..# ..##.",
  u = "..... ..... #...# #...# #...# #..## .##.#",
  v = "..... ..... #...# #...# #...# .#.#. ..#..",
  w = "..... ..... #...# #...# #.#.# #.#.# .#.#.",
  x = "..... ..... #...# .#.#. ..#.. .#.#. #...#",
  y = "..... ..... #...# #...# .#### ....# .###.",
  z = "..... ..... ##### ...#. ..#.. .#... #####",
  ["?"] = ".###. #...# ....# ...#. ..#.. ..... ..#..",
}

-- the glyphs as rows of booleans, once
local FONT = {}
for ch, pic in pairs(GLYPHS) do
  local rows = {}
  for row in pic:gmatch("[#.]+") do
    local r = {}
    for x = 1, 5 do r[x] = row:sub(x, x) == "#" end
    rows[#rows + 1] = r
  end
  FONT[ch] = rows
end

local CHAR_W, CHAR_H = 6, 7   -- 5 columns and a space

-- }======================================================================

-- {======================================================================
-- A canvas: RGB pixels, drawing, PNG bytes
-- =======================================================================

local Canvas = {}
Canvas.__index = Canvas

local WHITE, BLACK, GREY, GRID = {255, 255, 255}, {0, 0, 0}, {90, 90, 90}, {225, 225, 225}
-- matplotlib's first two colours: train blue, validation orange
local TRAIN, VAL = {31, 119, 180}, {255, 127, 14}

local function canvas(w, h)
  local px = {}
  for i = 1, w * h * 3 do px[i] = 255 end
  return setmetatable({w = w, h = h, px = px}, Canvas)
end

function Canvas:set(x, y, c)
  x, y = math.floor(x + 0.5), math.floor(y + 0.5)
  if x < 0 or y < 0 or x >= self.w or y >= self.h then return end
  local i = (y * self.w + x) * 3
  self.px[i + 1], self.px[i + 2], self.px[i + 3] = c[1], c[2], c[3]
end

function Canvas:rect(x0, y0, x1, y1, c)
  for y = math.floor(y0), math.floor(y1) do
    for x = math.floor(x0), math.floor(x1) do self:set(x, y, c) end
  end
end

--- A line `thick` pixels wide (a square brush moved along the longer axis).
function Canvas:line(x0, y0, x1, y1, c, thick)
  local n = math.max(math.abs(x1 - x0), math.abs(y1 - y0), 1)
  local r = (thick or 1) - 1
  for s = 0, math.ceil(n) do
    local x, y = x0 + (x1 - x0) * s / n, y0 + (y1 - y0) * s / n
    if r == 0 then self:set(x, y, c) else self:rect(x - r / 2, y - r / 2, x + r / 2, y + r / 2, c) end
  end
end

--- Text with its top left at (x, y), each font pixel scale x scale.
function Canvas:text(x, y, s, c, scale)
  scale = scale or 1
  for i = 1, #s do
    local g = FONT[s:sub(i, i):lower()] or FONT["?"]
    for row = 1, 7 do
      for col = 1, 5 do
        if g[row][col] then
          local px, py = x + ((i - 1) * CHAR_W + col - 1) * scale, y + (row - 1) * scale
          self:rect(px, py, px + scale - 1, py + scale - 1, c)
        end
      end
    end
  end
end

local function text_width(s, scale) return (#s * CHAR_W - 1) * (scale or 1) end

function Canvas:png()
  local rows, px = {}, self.px
  for i = 1, #px, 4096 do
    rows[#rows + 1] = string.char(table.unpack(px, i, math.min(i + 4095, #px)))
  end
  return ember._png_encode(self.w, self.h, table.concat(rows))
end

-- }======================================================================

-- {======================================================================
-- Axes
-- =======================================================================

--- About n round ticks (1, 2 or 5 times a power of ten) covering [lo, hi].
local function ticks(lo, hi, n)
  local raw = (hi - lo) / n
  local p = 10 ^ math.floor(math.log(raw, 10))
  local step = p
  for _, m in ipairs{1, 2, 5, 10} do
    if raw <= m * p * (1 + 1e-9) then step = m * p break end
  end
  local t = {}
  for k = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) do t[#t + 1] = k * step end
  return t, step
end

local function tick_label(v, step)
  if math.abs(v) < step * 1e-6 then return "0" end
  return ("%.4g"):format(v)
end

local PANEL_W, PANEL_H = 420, 300
local LEFT, RIGHT, TOP, BOTTOM = 58, 14, 30, 34   -- margins inside a panel

--- One panel at (ox, oy): the curves of `name` and "val_" .. name.
local function panel(cv, ox, oy, name, train, val, epochs)
  local finite = {}
  for _, series in ipairs{train, val} do
    for _, v in ipairs(series or {}) do
      if v == v and math.abs(v) ~= math.huge then finite[#finite + 1] = v end
    end
  end
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(finite) do lo, hi = math.min(lo, v), math.max(hi, v) end
  if #finite == 0 then lo, hi = 0, 1 end
  if hi - lo < 1e-12 * math.max(1, math.abs(hi)) then   -- a flat curve: a band around it
    local pad = math.abs(hi) > 0 and math.abs(hi) * 0.1 or 1
    lo, hi = lo - pad, hi + pad
  end
  local margin = (hi - lo) * 0.05   -- keep points off the frame
  lo, hi = lo - margin, hi + margin
  local yt, ystep = ticks(lo, hi, 5)
  lo = math.min(lo, yt[1] or lo)
  hi = math.max(hi, yt[#yt] or hi)
  local n = #epochs
  local x0, x1 = ox + LEFT, ox + PANEL_W - RIGHT
  local y0, y1 = oy + TOP, oy + PANEL_H - BOTTOM
  local e_lo, e_hi = epochs[1], math.max(epochs[n], epochs[1] + 1)
  local function X(e) return x0 + (x1 - x0) * (e - e_lo) / (e_hi - e_lo) end
  local function Y(v) return y1 - (y1 - y0) * (v - lo) / (hi - lo) end

  -- grid and y ticks
  for _, v in ipairs(yt) do
    local y = Y(v)
    cv:line(x0, y, x1, y, GRID)
    cv:line(x0 - 4, y, x0, y, BLACK)
    local s = tick_label(v, ystep)
    cv:text(x0 - 7 - text_width(s), y - 3, s, BLACK)
  end
  -- x ticks: whole epochs
  local xt = ticks(e_lo, e_hi, math.min(8, e_hi - e_lo))
  for _, e in ipairs(xt) do
    if e == math.floor(e) then
      local x = X(e)
      cv:line(x, y0, x, y1, GRID)
      cv:line(x, y1, x, y1 + 4, BLACK)
      local s = ("%d"):format(e)
      cv:text(x - text_width(s) / 2, y1 + 8, s, BLACK)
    end
  end
  -- frame
  cv:line(x0, y0, x1, y0, BLACK); cv:line(x0, y1, x1, y1, BLACK)
  cv:line(x0, y0, x0, y1, BLACK); cv:line(x1, y0, x1, y1, BLACK)
  -- title and x label
  cv:text(ox + (PANEL_W - text_width(name, 2)) / 2, oy + 8, name, BLACK, 2)
  cv:text(x0 + (x1 - x0 - text_width("epoch")) / 2, y1 + 20, "epoch", GREY)

  -- curves: a line between finite neighbours, a dot on every point when
  -- there are few (one epoch is a dot only)
  local function curve(series, colour)
    local px, py
    for i, e in ipairs(epochs) do
      local v = series[i]
      if v and v == v and math.abs(v) ~= math.huge then
        local x, y = X(e), Y(v)
        if px then cv:line(px, py, x, y, colour, 2) end
        if n <= 40 then cv:rect(x - 2, y - 2, x + 2, y + 2, colour) end
        px, py = x, y
      else
        px = nil
      end
    end
  end
  curve(train, TRAIN)
  if val then curve(val, VAL) end

  -- legend: in the corner the points cover least (top right on a tie)
  local entries = {{"train", TRAIN}}
  if val then entries[2] = {"validation", VAL} end
  local lw, lh = 0, 12 * #entries
  for _, en in ipairs(entries) do lw = math.max(lw, text_width(en[1]) + 18) end
  local best, lx, ly = math.huge
  for _, c in ipairs{{x1 - lw - 8, y0 + 6}, {x1 - lw - 8, y1 - lh - 6},
                     {x0 + 10, y0 + 6}, {x0 + 10, y1 - lh - 6}} do
    local covered = 0
    for _, series in ipairs{train, val or {}} do
      for i, e in ipairs(epochs) do
        local v = series[i]
        if v and v == v and math.abs(v) ~= math.huge then
          local x, y = X(e), Y(v)
          if x >= c[1] - 10 and x <= c[1] + lw + 10 and y >= c[2] - 10 and y <= c[2] + lh + 10 then
            covered = covered + 1
          end
        end
      end
    end
    if covered < best then best, lx, ly = covered, c[1], c[2] end
  end
  cv:rect(lx - 4, ly - 4, lx + lw + 2, ly + lh, WHITE)
  for i, en in ipairs(entries) do
    local y = ly + (i - 1) * 12
    cv:rect(lx, y, lx + 11, y + 6, en[2])
    cv:text(lx + 16, y, en[1], BLACK)
  end
end

-- }======================================================================

-- {======================================================================
-- history:plot
-- =======================================================================

local History = fit.History

--- history:plot(path [, {columns = 2}]) -> path: a PNG of the curves, one
-- panel per loss or metric (the train values blue, "val_" values orange),
-- the loss first, then the others in sorted order, `columns` panels a row.
function History:plot(path, opts)
  if type(path) ~= "string" or path == "" then
    error(("plot: expected a file name (a non-empty string), got %s"):format(type(path)), 2)
  end
  local o = T.options("plot", opts, {columns = 2})
  local columns = T.check_int("plot", "columns", o.columns, 1)
  local h, epochs = rawget(self, "history"), rawget(self, "epoch")
  if not epochs or #epochs == 0 then error("plot: the history holds no epoch", 2) end
  local names = {}
  for k in pairs(h) do
    if not k:match("^val_") then names[#names + 1] = k end
  end
  table.sort(names, function(a, b)
    if (a == "loss") ~= (b == "loss") then return a == "loss" end
    return a < b
  end)
  local cols = math.min(columns, #names)
  local rows = (#names + cols - 1) // cols
  local cv = canvas(PANEL_W * cols, PANEL_H * rows)
  for i, name in ipairs(names) do
    local ox, oy = (i - 1) % cols * PANEL_W, (i - 1) // cols * PANEL_H
    panel(cv, ox, oy, name, h[name], h["val_" .. name], epochs)
  end
  files.write_atomic("plot", path, cv:png(), blame.failer("ember/train/"))
  return path
end

-- }======================================================================

return true
