-- ember.data.BPE: GPT-2's byte-level BPE tokenizer (core/bpe.c) against
-- the ids Hugging Face's tokenizers gave for the fixture's 1,000 texts
-- (spec/reference/make_gpt2_fixture.py), round trips, training (which
-- reproduces Hugging Face's merges on the fixture's corpus), saving and
-- loading, and the errors of bad files.
local ember = require "ember"
local json = require "ember.json"
local run = require "helpers.run"
local data = ember.data

local DIR = "spec/fixtures/gpt2/"

local function fails(text, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error containing: " .. text)
  assert.is_truthy(tostring(err):find(text, 1, true), tostring(err))
end

local read = run.read_file

local write = run.write_file

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  return d
end

local function rmdir(d)
  os.remove(d .. "/vocab.json")
  os.remove(d .. "/merges.txt")
  os.remove(d)
end

local tok = data.BPE(DIR .. "vocab.json", DIR .. "merges.txt")

describe("data.BPE", function()
  it("encodes the fixture's 1,000 texts to Hugging Face's ids plus one", function()
    local texts = json.decode(read(DIR .. "texts.json"))
    assert.are.equal(1000, #texts)
    local i = 0
    for line in io.lines(DIR .. "ids_reference.txt") do
      i = i + 1
      local want = {}
      for w in line:gmatch("%d+") do want[#want + 1] = tonumber(w) + 1 end
      local ids = tok:encode(texts[i])
      assert.are.equal("int64", ids.dtype)
      assert.are.same(want, ids:totable(), ("text %d: %q"):format(i, texts[i]))
      assert.are.equal(texts[i], tok:decode(ids))
    end
    assert.are.equal(1000, i)
  end)

  it("knows its size and prints it", function()
    assert.are.equal(1001, tok:vocab_size())
    assert.are.equal("BPE(vocab_size=1001, merges=744)", tostring(tok))
  end)

  it("round-trips any bytes, invalid UTF-8 included", function()
    local cases = {"", " ", "\0\1\2\255\254", "caf\xe9 \xc3\x28 \xf0\x9f",
                   "a\r\n\tb  \v\f", ("x"):rep(3000), "日本語 🙂 Ελληνικά"}
    local all = {}
    for b = 0, 255 do all[#all + 1] = string.char(b) end
    cases[#cases + 1] = table.concat(all)
    for _, s in ipairs(cases) do
      local ids = tok:encode(s)
      assert.are.equal(s, tok:decode(ids))
      assert.are.equal(s, tok:decode(ids:totable()))
    end
    assert.are.same({0}, tok:encode(""):shape())
  end)

  it("recognises <|endoftext|> unless special = false", function()
    local eot = tok:vocab_size()
    local ids = tok:encode("a<|endoftext|>b"):totable()
    assert.are.equal(3, #ids)
    assert.are.equal(eot, ids[2])
    local plain = tok:encode("a<|endoftext|>b", {special = false}):totable()
    for _, id in ipairs(plain) do assert.are_not.equal(eot, id) end
    assert.are.equal("a<|endoftext|>b", tok:decode(plain))
    assert.are.equal("<|endoftext|>", tok:decode({eot}))
  end)

  it("decodes tensors of any integer dtype and shape", function()
    local ids = tok:encode("hello world")
    local s = tok:decode(ids:to("int32"))
    assert.are.equal("hello world", s)
    assert.are.equal("hello world", tok:decode(ids:view(1, -1)))
  end)

  it("encodes 1 MB in well under a second", function()
    local text = table.concat(json.decode(read(DIR .. "texts.json")), "\n")
    text = text:rep(math.ceil(1e6 / #text))
    local t0 = os.clock()
    local ids = tok:encode(text)
    local dt = os.clock() - t0
    print(("\nbench: BPE encode %.2f MB in %.3f s (%d ids; timing under load)")
      :format(#text / 1e6, dt, ids:numel()))
    assert.is_true(dt < 1)
    assert.are.equal(text, tok:decode(ids))
  end)

  it("rejects bad arguments", function()
    fails("encode: text must be a string, got no value", tok.encode, tok)
    fails("encode: unknown option 'x'", tok.encode, tok, "a", {x = 1})
    fails("encode: special must be a boolean", tok.encode, tok, "a", {special = 1})
    fails("decode: id 1002 (at 2) is out of range 1..1001", tok.decode, tok, {1, 1002})
    fails("decode: id 0 (at 1) is out of range", tok.decode, tok, ember.tensor({0, 1}, {dtype = "int64"}))
    fails("decode: ids must be an integer tensor, got float32", tok.decode, tok, ember.ones(2))
    fails("decode: ids[2] must be an integer, got 1.5", tok.decode, tok, {1, 1.5})
    fails("encode: expected a BPE tokenizer", tok.encode, "x", "y")
  end)
end)

describe("data.BPE errors", function()
  local d
  before_each(function()
    d = tmpdir()
    os.execute("mkdir " .. d)
  end)
  after_each(function() rmdir(d) end)

  local function vocab_of(extra)
    -- the fixture's vocabulary with text appended to the object
    return read(DIR .. "vocab.json"):gsub("}%s*$", extra .. "}")
  end

  it("names a missing file", function()
    fails("BPE: cannot open '" .. d .. "/none.json'", data.BPE, d .. "/none.json", DIR .. "merges.txt")
    fails("BPE: cannot open '" .. d .. "/none.txt'", data.BPE, DIR .. "vocab.json", d .. "/none.txt")
    fails("BPE: vocab_path must be a string, got nil", data.BPE)
  end)

  it("names malformed JSON and bad ids", function()
    local v = d .. "/vocab.json"
    write(v, "[1, 2]")
    fails("is not a vocabulary (a JSON object of token: id): expected '{' at byte 1", data.BPE, v, DIR .. "merges.txt")
    write(v, '{"a": 0, "b": 1')
    fails("expected ',' or '}'", data.BPE, v, DIR .. "merges.txt")
    write(v, '{"a": 0.5}')
    fails("the id of token 'a' must be an integer from 0", data.BPE, v, DIR .. "merges.txt")
    write(v, '{"a": 0, "b": 0}')
    fails("id 0 is given to both 'a' and 'b'", data.BPE, v, DIR .. "merges.txt")
    write(v, '{"a": 0, "b": 2}')
    fails("no token has id 1", data.BPE, v, DIR .. "merges.txt")
    -- an id no file of this size can reach is refused before it sizes the
    -- table (libFuzzer found a 2 GiB allocation)
    write(v, '{"a": 999999999}')
    fails("the id 999999999 of token 'a' is larger than a vocabulary of 16 bytes can number",
          data.BPE, v, DIR .. "merges.txt")
    write(v, '{"a": 0}')
    fails("lacks the token of byte 0x00 ('Ā')", data.BPE, v, DIR .. "merges.txt")
    write(v, '{"a\\ud800": 0}')
    fails("unpaired surrogate", data.BPE, v, DIR .. "merges.txt")
    write(v, vocab_of(', "x": 1001 x'))
    fails("expected ',' or '}'", data.BPE, v, DIR .. "merges.txt")
  end)

  it("names merges of unknown tokens, with the line", function()
    local m = d .. "/merges.txt"
    write(m, "#version: 0.2\nĠ t\nh e\nqq zz\n")
    fails("'" .. m .. "' line 4: the merge 'qq zz' uses the token 'qq', which is not in the vocabulary",
          data.BPE, DIR .. "vocab.json", m)
    write(m, "#version: 0.2\nĠ t\nt h e\n")
    fails("line 3: expected two tokens separated by one space, got 't h e'", data.BPE, DIR .. "vocab.json", m)
    write(m, "x y\n")
    fails("line 1: the merge 'x y' uses the result 'xy', which is not in the vocabulary",
          data.BPE, DIR .. "vocab.json", m)
  end)

  it("reads \\u escapes and an empty merges file", function()
    local v = d .. "/vocab.json"
    -- GPT-2's own vocab.json escapes non-ASCII characters
    local parts = {}
    local src = json.decode(read(DIR .. "vocab.json"))
    for k, id in pairs(src) do
      local esc = k:gsub('[\\"]', "\\%0"):gsub(utf8.charpattern, function(c)
        local cp = utf8.codepoint(c)
        return cp < 128 and c or ("\\u%04x"):format(cp)
      end)
      parts[#parts + 1] = ('"%s": %d'):format(esc, id)
    end
    write(v, "{" .. table.concat(parts, ",\n") .. "}")
    write(d .. "/merges.txt", "")
    local t = data.BPE(v, d .. "/merges.txt")
    assert.are.equal(1001, t:vocab_size())
    assert.are.equal(#"héllo", t:encode("héllo"):numel())   -- no merges
    assert.are.equal("héllo", t:decode(t:encode("héllo")))
  end)
end)

describe("data.BPE.train", function()
  local corpus = "/usr/share/games/fortunes/"

  it("reproduces Hugging Face's merges on the fixture's corpus", function()
    local f = io.open(corpus .. "computers", "rb")
    if not f then
      pending("the fortunes package is not installed (" .. corpus .. ")")
      return
    end
    f:close()
    local text = {}
    for name in io.lines(DIR .. "train_files.txt") do text[#text + 1] = read(corpus .. name) end
    local t = data.BPE.train(table.concat(text), 1000)
    assert.are.equal(1001, t:vocab_size())
    local d = tmpdir()
    t:save(d)
    local merges, vocab = read(d .. "/merges.txt"), json.decode(read(d .. "/vocab.json"))
    rmdir(d)
    assert.are.equal(read(DIR .. "merges.txt"), merges)
    assert.are.same(json.decode(read(DIR .. "vocab.json")), vocab)
  end)

  it("trains, saves atomically and loads back the same tokenizer", function()
    local text = ("the cat sat on the mat; the dog's mat isn't the cat's. "):rep(20)
      .. "Ünïcödé 123 456 \n\n  spaces"
    local t = data.BPE.train(text, 300)
    assert.is_true(t:vocab_size() > 257 and t:vocab_size() <= 301)
    local d = tmpdir()
    assert.are.equal(t, t:save(d))
    for name in io.popen("ls " .. d):lines() do
      assert.is_truthy(name == "vocab.json" or name == "merges.txt", name)
    end
    local back = data.BPE(d .. "/vocab.json", d .. "/merges.txt")
    rmdir(d)
    assert.are.equal(t:vocab_size(), back:vocab_size())
    assert.are.same(t:encode(text):totable(), back:encode(text):totable())
    assert.is_true(t:encode(text):numel() < #text / 3)
    assert.are.equal(text, back:decode(back:encode(text)))
  end)

  it("stops when no pair occurs min_frequency times", function()
    local t = data.BPE.train("abcabc", 1000)
    -- one word: ab (2, ahead of bc by the smaller ids), then abc (2);
    -- abc abc occurs once
    assert.are.equal(256 + 2 + 1, t:vocab_size())
    assert.are.same({258, 258}, t:encode("abcabc"):totable())
    local t1 = data.BPE.train("abcabc", 1000, {min_frequency = 1})
    assert.are.equal(256 + 3 + 1, t1:vocab_size())
  end)

  it("rejects bad arguments", function()
    fails("BPE.train: text must be a string, got nil", data.BPE.train)
    fails("BPE.train: vocab_size must be an integer, got 2.5", data.BPE.train, "a", 2.5)
    fails("BPE.train: vocab_size must be from 256", data.BPE.train, "a", 10)
    fails("BPE.train: unknown option", data.BPE.train, "a", 300, {x = 1})
    fails("BPE.train: min_frequency must be a positive integer, got 0", data.BPE.train, "a", 300, {min_frequency = 0})
  end)

  it("refuses to save into a path that is a file", function()
    local f = os.tmpname()
    fails("save: cannot", tok.save, tok, f)
    os.remove(f)
  end)
end)
