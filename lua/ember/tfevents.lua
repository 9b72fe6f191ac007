--- ember.tfevents: TensorBoard event files, written by hand.
--
-- An event file is a sequence of TFRecords:
--   uint64 length (little endian), uint32 masked CRC-32C of those 8 bytes,
--   the data, uint32 masked CRC-32C of the data;
-- each record's data is one `Event` protocol buffer
-- (tensorflow/core/util/event.proto).  Only the fields TensorBoard's
-- scalar, histogram and hparams dashboards read are written:
--   Event        { double wall_time = 1; int64 step = 2;
--                  string file_version = 3; Summary summary = 5; }
--   Summary      { repeated Value value = 1; }
--   Value        { string tag = 1; float simple_value = 2;
--                  HistogramProto histo = 5; SummaryMetadata metadata = 9; }
--   HistogramProto { double min = 1, max = 2, num = 3, sum = 4,
--                  sum_squares = 5; repeated double bucket_limit = 6 [packed];
--                  repeated double bucket = 7 [packed]; }
--   SummaryMetadata { PluginData plugin_data = 1; }
--   PluginData   { string plugin_name = 1; bytes content = 2; }
-- Protocol buffers with no library: a field is a varint key
-- (number << 3 | wire type) then a varint, 8 or 4 little-endian bytes, or
-- a varint length and bytes (strings and nested messages).
--
-- The encoders are exported (with crc32c and a record reader used by the
-- specs) so the format is checked in one place.
local tfevents = {}

-- {======================================================================
-- CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, one table
-- =======================================================================

local CRC_TABLE = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if c & 1 == 1 then c = (c >> 1) ~ 0x82F63B78 else c = c >> 1 end
  end
  CRC_TABLE[i] = c
end

function tfevents.crc32c(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do
    c = CRC_TABLE[(c ~ s:byte(i)) & 0xFF] ~ (c >> 8)
  end
  return c ~ 0xFFFFFFFF
end

--- TFRecord's mask: a CRC of data that holds CRCs is weak, so the stored
-- value is rotated right by 15 and offset (tensorflow/core/lib/hash/crc32c.h).
function tfevents.masked_crc32c(s)
  local c = tfevents.crc32c(s)
  return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
end

--- One TFRecord around data.
function tfevents.record(data)
  local len = string.pack("<I8", #data)
  return len .. string.pack("<I4", tfevents.masked_crc32c(len)) ..
         data .. string.pack("<I4", tfevents.masked_crc32c(data))
end

-- }======================================================================

-- {======================================================================
-- Protocol buffer fields
-- =======================================================================

local function varint(n)
  local out = {}
  -- n is a Lua integer; >> is a logical shift, so negatives end too
  repeat
    local b = n & 0x7F
    n = n >> 7
    out[#out + 1] = string.char(n ~= 0 and (b | 0x80) or b)
  until n == 0
  return table.concat(out)
end
tfevents.varint = varint

local function key(field, wire) return varint(field << 3 | wire) end

local pb = {}
tfevents.pb = pb
function pb.varint(field, n) return key(field, 0) .. varint(n) end
function pb.double(field, x) return key(field, 1) .. string.pack("<d", x) end
function pb.float(field, x) return key(field, 5) .. string.pack("<f", x) end
function pb.bytes(field, s) return key(field, 2) .. varint(#s) .. s end
--- A packed repeated double field.
function pb.doubles(field, list)
  local parts = {}
  for i, x in ipairs(list) do parts[i] = string.pack("<d", x) end
  return pb.bytes(field, table.concat(parts))
end

-- }======================================================================

-- {======================================================================
-- Events
-- =======================================================================

--- An Event holding summary values (encoded Summary.Value messages).
local function event(wall_time, step, summary_values)
  return pb.double(1, wall_time) .. pb.varint(2, step) ..
         pb.bytes(5, table.concat(summary_values))
end

--- The first record of every file: the format's version.
function tfevents.version_event(wall_time)
  return pb.double(1, wall_time) .. pb.bytes(3, "brain.Event:2")
end

--- Summary.Value with a scalar (simple_value, a float as TensorBoard stores).
function tfevents.scalar_value(tag, x)
  return pb.bytes(1, pb.bytes(1, tag) .. pb.float(2, x))
end

--- Summary.Value with a HistogramProto; h = {min, max, num, sum,
-- sum_squares, bucket_limit = {...}, bucket = {...}}.
function tfevents.histogram_value(tag, h)
  local histo = pb.double(1, h.min) .. pb.double(2, h.max) .. pb.double(3, h.num) ..
                pb.double(4, h.sum) .. pb.double(5, h.sum_squares) ..
                pb.doubles(6, h.bucket_limit) .. pb.doubles(7, h.bucket)
  return pb.bytes(1, pb.bytes(1, tag) .. pb.bytes(5, histo))
end

--- Summary.Value for the hparams plugin: tag and plugin content only, as
-- tensorboard.plugins.hparams.summary writes them.
function tfevents.plugin_value(tag, plugin_name, content)
  local metadata = pb.bytes(1, pb.bytes(1, plugin_name) .. pb.bytes(2, content))
  return pb.bytes(1, pb.bytes(1, tag) .. pb.bytes(9, metadata))
end

--- google.protobuf.Value: number_value = 2, string_value = 3, bool_value = 4.
local function struct_value(v)
  if type(v) == "number" then return pb.double(2, v) end
  if type(v) == "boolean" then return pb.varint(4, v and 1 or 0) end
  return pb.bytes(3, tostring(v))
end

--- HParamsPluginData{version = 0, session_start_info = 3 {hparams = 1
-- (map<string, Value>: entries {key = 1, value = 2}), group_name = 4,
-- start_time_secs = 5}}; names sorted so files are reproducible.
function tfevents.hparams_start(hparams, group_name, start_time)
  local names = {}
  for k in pairs(hparams) do names[#names + 1] = k end
  table.sort(names)
  local info = {}
  for i, k in ipairs(names) do
    info[i] = pb.bytes(1, pb.bytes(1, k) .. pb.bytes(2, struct_value(hparams[k])))
  end
  info[#info + 1] = pb.bytes(4, group_name) .. pb.double(5, start_time)
  return tfevents.plugin_value("_hparams_/session_start_info", "hparams",
                               pb.bytes(3, table.concat(info)))
end

--- HParamsPluginData{session_end_info = 4 {status = 1 (1: success,
-- 3: failure), end_time_secs = 2}}.
function tfevents.hparams_end(ok, end_time)
  return tfevents.plugin_value("_hparams_/session_end_info", "hparams",
                               pb.bytes(4, pb.varint(1, ok and 1 or 3) .. pb.double(2, end_time)))
end

-- }======================================================================

-- {======================================================================
-- A writer: one file, every record flushed
-- =======================================================================

local Writer = {}
Writer.__index = Writer

--- The host's name for the file name, as TensorFlow's (no shell spawned).
local function hostname()
  local f = io.open("/proc/sys/kernel/hostname", "r")
  local h = f and f:read("l")
  if f then f:close() end
  h = h or os.getenv("HOSTNAME") or "localhost"
  return (h:gsub("[^%w%.%-_]", "_"))
end

--- Make dir and its parents.  Lua has no mkdir: the shell's, with the
-- path single-quoted so no character in it is interpreted.
local function make_dirs(dir)
  local probe = io.open(dir .. "/.", "r")
  if probe then probe:close() return true end
  os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "' 2>/dev/null")
  probe = io.open(dir .. "/.", "r")
  if probe then probe:close() return true end
  return false
end

--- A new event file in dir: events.out.tfevents.<seconds>.<host>, as
-- TensorFlow names them (a counter added when the name is taken).  nil,
-- message when it cannot be written.
function tfevents.open(dir, now)
  if not make_dirs(dir) then return nil, ("cannot make the folder '%s'"):format(dir) end
  local base = ("%s/events.out.tfevents.%010d.%s"):format(dir, math.floor(now), hostname())
  local path, n = base, 0
  while true do
    local f = io.open(path, "rb")
    if not f then break end
    f:close()
    n = n + 1
    path = ("%s.%d"):format(base, n)
  end
  local f, err = io.open(path, "wb")
  if not f then return nil, ("cannot write '%s': %s"):format(path, err) end
  local w = setmetatable({file = f, path = path}, Writer)
  w:write(tfevents.version_event(now))
  return w
end

--- Append one Event (encoded) and flush, so a crash keeps every record.
function Writer:write(ev)
  assert(self.file:write(tfevents.record(ev)))
  self.file:flush()
end

--- Append an Event of summary values at step.
function Writer:summary(wall_time, step, values)
  if #values > 0 then self:write(event(wall_time, step, values)) end
end

function Writer:close()
  if self.file then self.file:close() self.file = nil end
end

-- }======================================================================

-- {======================================================================
-- Reading (for the specs and for users checking a file)
-- =======================================================================

--- The records of an event file's bytes, checking both CRCs of each;
-- errors name the record.
function tfevents.read_records(bytes)
  local records, pos = {}, 1
  while pos <= #bytes do
    local n = #records + 1
    if pos + 11 > #bytes then error(("tfevents: record %d: truncated header"):format(n)) end
    local len_bytes = bytes:sub(pos, pos + 7)
    local len, lcrc = string.unpack("<I8", len_bytes), string.unpack("<I4", bytes, pos + 8)
    if lcrc ~= tfevents.masked_crc32c(len_bytes) then
      error(("tfevents: record %d: bad length CRC"):format(n))
    end
    local data = bytes:sub(pos + 12, pos + 11 + len)
    if #data ~= len or pos + 15 + len > #bytes then
      error(("tfevents: record %d: truncated data"):format(n))
    end
    if string.unpack("<I4", bytes, pos + 12 + len) ~= tfevents.masked_crc32c(data) then
      error(("tfevents: record %d: bad data CRC"):format(n))
    end
    records[n] = data
    pos = pos + 16 + len
  end
  return records
end

-- }======================================================================

return tfevents
