--- ember.train.progress: Keras's progress display for fit (internal).
local ember = require "ember"

-- {======================================================================
-- Progress display
-- =======================================================================

--- Seconds as Keras shows them: 7s, 1:05, 1:02:03.
local function fmt_time(s)
  s = math.floor(s + 0.5)
  if s >= 3600 then
    return ("%d:%02d:%02d"):format(s // 3600, s % 3600 // 60, s % 60)
  elseif s >= 60 then
    return ("%d:%02d"):format(s // 60, s % 60)
  end
  return ("%ds"):format(s)
end

local function fmt_step(s)
  if s >= 1 then return ("%.0fs/step"):format(s) end
  if s >= 1e-3 then return ("%.0fms/step"):format(s * 1e3) end
  return ("%.0fus/step"):format(s * 1e6)
end

--- The logs as " - name: value" parts, in the order of keys.
local function log_parts(keys, logs)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = logs[k]
    if v ~= v then
      parts[#parts + 1] = " - " .. k .. ": nan"   -- not C's "-nan"
    elseif v ~= nil then
      parts[#parts + 1] = (math.abs(v) >= 1e-3 or v == 0) and (" - %s: %.4f"):format(k, v)
                          or (" - %s: %.4e"):format(k, v)
    end
  end
  return parts
end

local function fmt_logs(keys, logs) return table.concat(log_parts(keys, logs)) end

--- The terminal's width: $COLUMNS when it is a positive whole number (a
-- user's override, and what the specs set), else what the terminal says
-- (TIOCGWINSZ), else 80.
local function terminal_columns()
  local c = math.tointeger(tonumber(os.getenv("COLUMNS") or ""))
  if c and c > 0 then return c end
  return ember._terminal_columns() or 80
end

--- Keras's progress bar: redrawn in place on a terminal, one line per
-- epoch otherwise.  On a terminal no line is wider than the terminal less
-- one column (a line that fills the last column makes some terminals wrap),
-- so "\r" always returns to the line being redrawn.
local Progress = {}
Progress.__index = Progress

function Progress.new(verbose, epochs)
  return setmetatable({verbose = verbose, epochs = epochs,
                       tty = verbose == 1 and ember._stdout_isatty(), width = 0}, Progress)
end

function Progress:epoch_begin(epoch, steps)
  self.epoch, self.steps, self.t0, self.last = epoch, steps, ember.clock(), -math.huge
  -- read per epoch, so a resized window is followed
  self.max_width = math.max(terminal_columns() - 1, 1)
  if self.verbose == 0 then return end
  if self.tty then io.stdout:write(("Epoch %d/%d\n"):format(epoch, self.epochs)) end
end

--- Keras's bar: "[=====>....]", `width` wide inside, all "=" when the
-- epoch is done.
local function bar(done, steps, width)
  local filled = math.floor(width * done / steps)
  local s = ""
  if filled > 0 then s = ("="):rep(filled - 1) .. (done < steps and ">" or "=") end
  return "[" .. s .. ("."):rep(width - filled) .. "]"
end

local BAR_MAX, BAR_MIN = 30, 10   -- Keras's 30; below 10 a bar says nothing

--- head .. bar .. tail in at most self.max_width columns: the bar shrinks
-- from 30 to 10 to make room for tail, and is left out when even 10 does
-- not fit beside head.
function Progress:with_bar(head, done, tail)
  local room = self.max_width - #head - #tail - 2
  local w = math.max(BAR_MIN, math.min(BAR_MAX, room))
  if #head + w + 2 > self.max_width then return head:gsub(" $", "") .. tail end
  return head .. bar(done, self.steps, w) .. tail
end

local function digits(n) return #tostring(n) end

function Progress:batch_end(done, keys, logs)
  if not self.tty then return end
  local now = ember.clock()
  if done < self.steps and now - self.last < 0.1 then return end
  self.last = now
  local elapsed = now - self.t0
  local eta = elapsed / done * (self.steps - done)
  local head = ("%" .. digits(self.steps) .. "d/%d "):format(done, self.steps)
  local line = self:with_bar(head, done, " - ETA: " .. fmt_time(eta) .. fmt_logs(keys, logs))
  -- the live line is redrawn in place, so it must stay one line: what does
  -- not fit is cut (the epoch's last line shows every value)
  self:draw(line:sub(1, self.max_width))
end

function Progress:draw(line)
  local pad = math.max(0, self.width - #line)
  io.stdout:write("\r", line, (" "):rep(pad))
  io.stdout:flush()
  self.width = #line
end

--- The epoch's last line on a terminal: the bar and the timing, then the
-- logs, broken between values onto indented lines where they do not fit.
function Progress:final_lines(done, timing, keys, logs)
  local lines = {self:with_bar(("%d/%d "):format(done, self.steps), done, timing)}
  for _, part in ipairs(log_parts(keys, logs)) do
    if #lines[#lines] + #part > self.max_width then
      lines[#lines + 1] = "    " .. part:sub(4)   -- without its " - "
    else
      lines[#lines] = lines[#lines] .. part
    end
  end
  for i, l in ipairs(lines) do lines[i] = l:sub(1, self.max_width) end
  return lines
end

function Progress:epoch_end(done, keys, logs)
  if self.verbose == 0 then return end
  local elapsed = ember.clock() - self.t0
  local timing = (" - %s %s"):format(fmt_time(elapsed), fmt_step(elapsed / math.max(done, 1)))
  if self.tty then
    local lines = self:final_lines(done, timing, keys, logs)
    self:draw(lines[1])
    for i = 2, #lines do io.stdout:write("\n", lines[i]) end
    io.stdout:write("\n")
    self.width = 0
  else
    io.stdout:write(("Epoch %d/%d - %d/%d%s%s\n"):format(self.epoch, self.epochs, done,
                    self.steps, timing, fmt_logs(keys, logs)))
  end
  io.stdout:flush()
end

-- }======================================================================

return {Progress = Progress, format_time = fmt_time, format_step = fmt_step}
