-- The hostile-file corpus (spec/fixtures/hostile, written by
-- tools/fuzz/make_hostile.py): every file breaks one rule of its format,
-- and ember.load / data.read_idx must refuse it with an error that names
-- the function, the file and the problem -- never crash, never allocate
-- what the file cannot back (`make asan` runs this file too, and `make
-- fuzz-files` starts libFuzzer from the same files).
local ember = require "ember"
local run = require "helpers.run"

local DIR = "spec/fixtures/hostile"

-- {======================================================================
-- The expected errors: file -> key words of the message (plain strings)
-- =======================================================================

local SAFETENSORS = {
  st_past_end = {"past the end of the data", "[0, 400]", "truncated or corrupt"},
  st_huge_shape = {"past the end of the data", "1099511627776"},
  st_overlap = {"'a' and 'b' overlap", "[0, 16] and [8, 16]"},
  st_header_past_end = {"truncated", "header length is 4096 bytes",
                        "only 7 bytes follow"},
  st_header_huge = {"header length 9223372036854775808", "over the limit"},
  st_short = {"truncated", "3 bytes", "8-byte header length"},
  st_bad_json = {"not valid JSON", "expected ',' or '}'"},
  st_trailing_json = {"not valid JSON", "after the top-level object"},
  st_not_object = {"not a JSON object", "an array"},
  st_deep_nesting = {"tensor 'a'", "expected an object", "got an array"},
  st_bad_utf8 = {"not valid JSON", "invalid UTF-8"},
  st_duplicate_name = {"tensor name 'a' appears twice"},
  st_duplicate_meta = {"__metadata__ key 'k' appears twice"},
  st_shape_overflow = {"shape [4294967296,4294967296,16]", "too large"},
  st_negative_shape = {"shape entry -1", "non-negative integers"},
  st_shape_past_int64 = {"shape entry 99999999999999999999",
                         "non-negative integers"},
  st_offsets_mismatch = {"data_offsets [0, 10]", "shape [3] F32 needs 12 bytes"},
  st_offsets_reversed = {"data_offsets [8, 4]", "end before they begin"},
  st_bad_dtype = {"unknown dtype 'F33'"},
  st_too_many_dims = {"more than 8 dimensions"},
  st_bad_bool = {"BOOL", "other than 0 or 1", "element 2"},
  st_missing_field = {"tensor 'a' has no 'data_offsets'"},
}

local IDX = {
  ["idx_bad_magic.idx"] = {"not an IDX file", "00 00", "got 12 34"},
  ["idx_bad_type.idx"] = {"unknown data type 0x0A"},
  ["idx_rank0.idx"] = {"0 dimensions", "expected 1 to 8"},
  ["idx_rank_huge.idx"] = {"255 dimensions", "expected 1 to 8"},
  ["idx_dims_overflow.idx"] = {"[4294967295,4294967295,2]", "over the limit"},
  ["idx_huge_claim.idx"] = {"truncated", "expected 1073741824 bytes of data",
                            "got 8"},
  ["idx_huge_claim.idx.gz"] = {"declares 2147483648 bytes of data",
                               "more than its 27 bytes of gzip could hold"},
  ["idx_truncated_header.idx"] = {"truncated", "16-byte header", "got 8 bytes"},
  ["idx_truncated_data.idx"] = {"truncated", "expected 6 bytes of data",
                                "got 4"},
  ["idx_truncated_data.idx.gz"] = {"truncated", "expected 6 bytes of data",
                                   "got 4"},
  ["idx_truncated_gzip.idx.gz"] = {"truncated", "12-byte header"},
  ["idx_truncated_gzip_data.idx.gz"] = {"truncated",
                                        "expected 200 bytes of data", "got 100"},
  ["idx_gzip_garbage.idx.gz"] = {"corrupt (gzip)"},
  ["idx_gzip_of_garbage.idx.gz"] = {"not an IDX file", "00 00"},
  ["idx_gzip_bad_crc.idx.gz"] = {"corrupt (gzip)", "incorrect data check"},
  ["idx_trailing.idx"] = {"3 extra bytes", "after the expected 6 bytes"},
  ["idx_trailing.idx.gz"] = {"3 extra bytes", "after the expected 6 bytes"},
  ["idx_empty.idx"] = {"truncated", "4-byte header", "got 0 bytes"},
}

local IMG = {
  ["img_bad_magic.png"] = {"not a PNG or JPEG file"},
  ["img_empty.jpg"] = {"not a PNG or JPEG file", "empty"},
  ["img_truncated.png"] = {"truncated", "after 50 bytes"},
  ["img_huge_claim.png"] = {"truncated or corrupt", "16384x16384", "cannot fit in 68 bytes"},
  ["img_over_limit.png"] = {"65536x65536", "more than the limit of 268435456 pixels"},
  ["img_bad_crc.png"] = {"not a valid PNG", "CRC error"},
  ["img_bad_depth.png"] = {"not a valid PNG", "Invalid IHDR data"},
  ["img_truncated.jpg"] = {"truncated", "JPEG data ends early"},
  ["img_huge_claim.jpg"] = {"truncated or corrupt", "16000x16000", "cannot fit in"},
  ["img_garbage.jpg"] = {"not a valid JPEG"},
}

-- }======================================================================

--- Assert that fn(path) fails and that its message names `fname` (the
--- function), the file and every key word.
local function refuses(fn, fname, path, words)
  local ok, err = pcall(fn, path)
  assert.is_false(ok, path .. " should have been refused")
  err = tostring(err)
  local function has(s)
    assert.truthy(err:find(s, 1, true), ("message %q lacks %q"):format(err, s))
  end
  has(fname .. ": ")
  has("'" .. path .. "'")
  for _, w in ipairs(words) do has(w) end
end

--- The plain files of a folder, sorted.
local function files(dir)
  local out, rc = run.sh("ls -A " .. run.q(dir))
  assert.equal(0, rc, out)
  local names = {}
  for name in out:gmatch("[^\n]+") do
    if name ~= "seeds" then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

local read_bytes = run.read_file

describe("hostile files", function()
  describe("ember.load refuses each bad safetensors file", function()
    for base, words in pairs(SAFETENSORS) do
      it(base, function()
        refuses(ember.load, "load", DIR .. "/" .. base .. ".safetensors", words)
      end)
    end
  end)

  describe("data.read_idx refuses each bad IDX file", function()
    for name, words in pairs(IDX) do
      it(name, function()
        refuses(ember.data.read_idx, "read_idx", DIR .. "/" .. name, words)
      end)
    end
  end)

  describe("data.read_image refuses each bad PNG or JPEG file", function()
    for name, words in pairs(IMG) do
      it(name, function()
        refuses(ember.data.read_image, "read_image", DIR .. "/" .. name, words)
      end)
    end
  end)

  it("a failed load can be retried and changes nothing", function()
    local p = DIR .. "/st_overlap.safetensors"
    local _, e1 = pcall(ember.load, p)
    local _, e2 = pcall(ember.load, p)
    assert.equal(e1, e2)
    assert.equal(ember.tensor({1, 2}):sum():item(), 3)
  end)

  it("every file in the corpus is checked above", function()
    for _, name in ipairs(files(DIR)) do
      local known = IDX[name] or IMG[name] or SAFETENSORS[name:match("^(.*)%.safetensors$")]
      assert.truthy(known, name .. " has no expected error in hostile_spec")
    end
    local n = 0
    for _ in pairs(SAFETENSORS) do n = n + 1 end
    for _ in pairs(IDX) do n = n + 1 end
    for _ in pairs(IMG) do n = n + 1 end
    assert.equal(n, #files(DIR))
  end)

  it("the seeds, the valid files the hostile ones depart from, load", function()
    local st = ember.load(DIR .. "/seeds/st_valid.safetensors")
    assert.same({{1, 2}, {3, 4}}, st.a:totable())
    assert.same({1, 2, 3}, st.b:totable())
    local hb = ember.load(DIR .. "/seeds/st_f16_bool.safetensors")
    assert.same({1, -2}, hb.h:totable())
    assert.equal("bool", hb.m.dtype)
    local u8 = ember.data.read_idx(DIR .. "/seeds/idx_valid_u8.idx")
    assert.same({{0, 1, 2}, {3, 4, 5}}, u8:totable())
    assert.same(u8:totable(),
                ember.data.read_idx(DIR .. "/seeds/idx_valid_u8.idx.gz"):totable())
    assert.same({1.5, -2}, ember.data.read_idx(DIR .. "/seeds/idx_valid_f32.idx"):totable())
    assert.same({1, -2, 300},
                ember.data.read_idx(DIR .. "/seeds/idx_valid_i16.idx.gz"):totable())
    local png = ember.data.read_image(DIR .. "/seeds/img_valid.png")
    assert.same({3, 2, 3}, png:shape())
    assert.same({{0, 3, 6}, {90, 93, 96}}, (png[1] * 255):round():totable())
    assert.same({3, 6, 8}, ember.data.read_image(DIR .. "/seeds/img_valid.jpg"):shape())
  end)

  it("the committed corpus is what tools/fuzz/make_hostile.py writes", function()
    local tmp = run.tmpdir()
    local out, rc = run.sh("python3 tools/fuzz/make_hostile.py " .. run.q(tmp))
    local ok, err = pcall(function()
      assert.equal(0, rc, out)
      for _, sub in ipairs({"", "/seeds"}) do
        local made, kept = files(tmp .. sub), files(DIR .. sub)
        assert.same(made, kept)
        for _, name in ipairs(made) do
          assert.equal(read_bytes(tmp .. sub .. "/" .. name),
                       read_bytes(DIR .. sub .. "/" .. name), name .. " differs")
        end
      end
    end)
    run.rmdir(tmp)
    assert(ok, err)
  end)
end)
