-- ember.data.chars (a character-level tokenizer) and ember.data.windows
-- (random training windows of a token stream).
local ember = require "ember"
local data = ember.data

local function fails(text, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error containing: " .. text)
  assert.is_truthy(tostring(err):find(text, 1, true), tostring(err))
end

describe("data.chars", function()
  it("makes a sorted vocabulary and encodes the text 1-based", function()
    local tok, ids = data.chars("hello")
    assert.are.same({"e", "h", "l", "o"}, tok.chars)
    assert.are.equal(4, tok.vocab_size)
    assert.are.equal("int64", ids.dtype)
    assert.are.same({2, 1, 3, 3, 4}, ids:totable())
    assert.are.same({3, 4}, tok:encode("lo"):totable())
    assert.are.equal("hole", tok:decode(tok:encode("hole")))
    assert.are.equal("Tokenizer(4 characters)", tostring(tok))
  end)

  it("takes UTF-8 characters as tokens, ordered by code point, round trip exact", function()
    local text = "naïve café — 日本語 🙂\n\tA\0z"
    local tok, ids = data.chars(text)
    assert.are.equal(utf8.len(text), ids:size(1))
    assert.are.equal(text, tok:decode(ids))
    assert.are.equal(text, tok:decode(ids:totable()))
    for i = 2, #tok.chars do
      assert.is_true(utf8.codepoint(tok.chars[i - 1]) < utf8.codepoint(tok.chars[i]))
    end
    assert.are.equal("\0", tok.chars[1])
    assert.are.equal("🙂", tok.chars[#tok.chars])
  end)

  it("handles empty text and empty ids", function()
    local tok, ids = data.chars("")
    assert.are.equal(0, tok.vocab_size)
    assert.are.same({0}, ids:shape())
    assert.are.equal("", tok:decode(ids))
    local t = data.chars("ab")
    assert.are.same({0}, t:encode(""):shape())
    assert.are.equal("b", t:decode(ember.tensor(2, {dtype = "int64"})))  -- 0-d
    assert.are.equal("ab", t:decode(ember.tensor({1, 2}, {dtype = "int32"})))
  end)

  it("reads a file", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write("abcab\n")
    f:close()
    local tok, ids = data.chars{path = path}
    os.remove(path)
    assert.are.equal(4, tok.vocab_size)
    assert.are.equal("abcab\n", tok:decode(ids))
  end)

  it("gives clear errors", function()
    local tok = data.chars("abc")
    fails("encode: character 'z' (U+007A) (character 2 of the text) is not in the vocabulary",
          tok.encode, tok, "az")
    fails("decode: id 4 (at position 2) is outside the vocabulary 1..3", tok.decode, tok, {1, 4})
    fails("decode: id 0 (at position 1)", tok.decode, tok, ember.tensor({0}, {dtype = "int64"}))
    fails("decode: expected a 1-d tensor of ids, got shape [1,2]", tok.decode, tok,
          ember.ones(1, 2, {dtype = "int64"}))
    fails("decode: expected an integer tensor of ids, got float32", tok.decode, tok, ember.ones(2))
    fails("chars: the text is not valid UTF-8 (at byte 2)", data.chars, "a\255b")
    fails("encode: the text is not valid UTF-8 (at byte 1)", tok.encode, tok, "\192\128")
    fails("encode: call it as a method, tok:encode(...)", tok.encode, "abc")
    fails("chars: expected a string or {path = file}, got nil", data.chars)
    fails("chars: unknown option 'file'", data.chars, {file = "x"})
    fails("chars: cannot open", data.chars, {path = "/nonexistent/file"})
  end)
end)

describe("data.windows", function()
  local ids = ember.arange(1, 21, {dtype = "int64"})   -- 1..20: a window shows its start

  it("cuts random windows and the targets one later", function()
    ember.manual_seed(7)
    local x, y = data.windows(ids, 5, 8)
    assert.are.same({8, 5}, x:shape())
    assert.are.same({8, 5}, y:shape())
    assert.are.equal("int64", x.dtype)
    assert.is_true(y:equal(x + 1))
    for b = 1, 8 do
      local row = x[b]:totable()
      assert.is_true(row[1] >= 1 and row[1] <= 15, "start " .. row[1])
      for t = 1, 5 do assert.are.equal(row[1] + t - 1, row[t]) end
    end
  end)

  it("reaches every start, the last one included", function()
    ember.manual_seed(1)
    local x = data.windows(ids, 18, 200)     -- 20 ids: starts 1 and 2
    local starts = {}
    for _, s in ipairs(x[{ {}, 1 }]:totable()) do starts[s] = true end
    assert.are.same({true, true}, starts)
  end)

  it("draws from the generator given, and from the global one otherwise", function()
    local a = data.windows(ids, 4, 6, {generator = ember.Generator(3)})
    local b = data.windows(ids, 4, 6, {generator = ember.Generator(3)})
    assert.is_true(a:equal(b))
    ember.manual_seed(3)
    local c = data.windows(ids, 4, 6)
    ember.manual_seed(3)
    assert.is_true(c:equal((data.windows(ids, 4, 6))))
  end)

  it("takes int32 ids and non-contiguous ones", function()
    ember.manual_seed(2)
    local x, y = data.windows(ids:int(), 3, 2)
    assert.are.equal("int64", x.dtype)
    assert.is_true(y:equal(x + 1))
    local strided = ember.arange(1, 41, {dtype = "int64"})[{ {1, 40, 2} }]
    x, y = data.windows(strided, 3, 4)
    assert.is_true(y:equal(x + 2))
  end)

  it("checks its arguments", function()
    fails("windows: 20 ids are too few for windows of 20 plus the shifted target " ..
          "(at least 21 needed)", data.windows, ids, 20, 1)
    fails("windows: expected a 1-d int64 or int32 tensor of ids, got float32 of shape [3]",
          data.windows, ember.ones(3), 1, 1)
    fails("windows: block_size must be an integer >= 1, got 0", data.windows, ids, 0, 1)
    fails("windows: batch_size must be an integer >= 1, got 1.5", data.windows, ids, 2, 1.5)
    fails("windows: unknown option 'seed'", data.windows, ids, 2, 2, {seed = 1})
  end)
end)
