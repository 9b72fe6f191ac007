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

local function fmt_logs(keys, logs)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = logs[k]
    if v ~= v then
      parts[#parts + 1] = k .. ": nan"   -- not C's "-nan"
    elseif v ~= nil then
      parts[#parts + 1] = (math.abs(v) >= 1e-3 or v == 0) and ("%s: %.4f"):format(k, v)
                          or ("%s: %.4e"):format(k, v)
    end
  end
  return #parts > 0 and " - " .. table.concat(parts, " - ") or ""
end

--- Keras's progress bar: redrawn in place on a terminal, one line per
-- epoch otherwise.
local Progress = {}
Progress.__index = Progress

function Progress.new(verbose, epochs)
  return setmetatable({verbose = verbose, epochs = epochs,
                       tty = verbose == 1 and ember._stdout_isatty(), width = 0}, Progress)
end

function Progress:epoch_begin(epoch, steps)
  self.epoch, self.steps, self.t0, self.last = epoch, steps, ember.clock(), -math.huge
  if self.verbose == 0 then return end
  if self.tty then io.stdout:write(("Epoch %d/%d\n"):format(epoch, self.epochs)) end
end

--- Keras's bar: "[=====>....]", 30 wide, all "=" when the epoch is done.
local function bar(done, steps)
  local width = 30
  local filled = math.floor(width * done / steps)
  local s = ""
  if filled > 0 then s = ("="):rep(filled - 1) .. (done < steps and ">" or "=") end
  return "[" .. s .. ("."):rep(width - filled) .. "]"
end

local function digits(n) return #tostring(n) end

function Progress:batch_end(done, keys, logs)
  if not self.tty then return end
  local now = ember.clock()
  if done < self.steps and now - self.last < 0.1 then return end
  self.last = now
  local elapsed = now - self.t0
  local eta = elapsed / done * (self.steps - done)
  local line = ("%" .. digits(self.steps) .. "d/%d %s - ETA: %s%s")
               :format(done, self.steps, bar(done, self.steps), fmt_time(eta), fmt_logs(keys, logs))
  self:draw(line)
end

function Progress:draw(line)
  local pad = math.max(0, self.width - #line)
  io.stdout:write("\r", line, (" "):rep(pad))
  io.stdout:flush()
  self.width = #line
end

function Progress:epoch_end(done, keys, logs)
  if self.verbose == 0 then return end
  local elapsed = ember.clock() - self.t0
  local timing = (" - %s %s"):format(fmt_time(elapsed), fmt_step(elapsed / math.max(done, 1)))
  if self.tty then
    self:draw(("%d/%d %s%s%s"):format(done, self.steps, bar(done, self.steps), timing,
                                      fmt_logs(keys, logs)))
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
