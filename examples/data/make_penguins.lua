-- make_penguins.lua: writes examples/data/penguins.csv, 150 made-up
-- penguins (50 of each species) whose measurements follow the means and
-- spreads of the Palmer Penguins data (Gorman, Williams and Fraser, 2014),
-- rows in a shuffled order (fit's validation_split takes the last rows).
-- docs/tutorial.md trains on it.  Plain Lua 5.4, deterministic (its own
-- seeded math.random), so the committed file can be made again:
--   lua5.4 examples/data/make_penguins.lua > examples/data/penguins.csv
math.randomseed(2014)

-- species: mean and standard deviation of bill length (mm), bill depth
-- (mm), flipper length (mm), body mass (g)
local SPECIES = {
  {"Adelie",    {38.8, 2.7}, {18.3, 1.2}, {190, 6.5}, {3700, 460}},
  {"Chinstrap", {48.8, 3.3}, {18.4, 1.1}, {196, 7.1}, {3733, 384}},
  {"Gentoo",    {47.5, 3.1}, {15.0, 1.0}, {217, 6.5}, {5076, 504}},
}

--- A normal draw (Box-Muller).
local function normal(mean, sd)
  local u1, u2 = 1 - math.random(), math.random()
  return mean + sd * math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
end

local rows = {}
for _, s in ipairs(SPECIES) do
  for _ = 1, 50 do
    rows[#rows + 1] = ("%.1f,%.1f,%d,%d,%s"):format(normal(s[2][1], s[2][2]), normal(s[3][1], s[3][2]),
      math.floor(normal(s[4][1], s[4][2]) + 0.5), math.floor(normal(s[5][1], s[5][2]) / 25 + 0.5) * 25,
      s[1])
  end
end
for i = #rows, 2, -1 do           -- Fisher-Yates
  local j = math.random(i)
  rows[i], rows[j] = rows[j], rows[i]
end
print("bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,species")
for _, r in ipairs(rows) do print(r) end
