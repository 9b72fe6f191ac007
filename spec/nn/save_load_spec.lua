-- Model files: model:save / nn.load round trips of every built-in layer
-- (outputs equal exactly after reloading), architecture configs
-- (get_config / from_config, argument types kept), optimizer state and
-- compile settings, metadata, and the errors.  Also ember.json, which
-- writes the architecture.
local ember = require "ember"
local nn = ember.nn
local optim = ember.optim
local json = require "ember.json"
local H = require "nn.helper"

local function tmpfile()
  local p = os.tmpname()
  os.remove(p)
  return p .. ".safetensors"
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- Save m, load it back; returns the loaded model and the metadata.
local function round_trip(m, opts)
  local path = tmpfile()
  m:save(path, opts)
  local ok, m2, meta = pcall(nn.load, path)
  os.remove(path)
  assert(ok, m2)
  return m2, meta
end

--- Assert a and b hold equal tensors under the same names.
local function same_state(a, b)
  local sa, sb = a:state_dict(), b:state_dict()
  for name, t in pairs(sa) do
    assert(sb[name] ~= nil, "missing " .. name)
    assert.are.equal(t.dtype, sb[name].dtype, name)
    assert.is_true(t:equal(sb[name]), name .. " differs")
  end
  for name in pairs(sb) do assert(sa[name] ~= nil, "unexpected " .. name) end
end

--- Reload m and check: same class, same state, same eval-mode output on x.
local function check_reload(m, x)
  local m2 = round_trip(m)
  assert.are.equal(tostring(m), tostring(m2))
  same_state(m, m2)
  assert.is_true(m2.training, "a loaded model is in training mode")
  m:eval(); m2:eval()
  local y, y2 = m(x), m2(x)
  assert.are.same(y:shape(), y2:shape())
  assert.is_true(y:equal(y2), "outputs differ after reloading")
  return m2
end

describe("ember.json", function()
  it("writes integers without and floats with a point, and reads their types back", function()
    assert.are.equal("[1,-7,1.0,0.1,-0.0,1e+300,2.5e-08]",
                     json.encode{1, -7, 1.0, 0.1, -0.0, 1e300, 2.5e-8})
    local v = json.decode("[1, 1.0, 1e2, -0, 9223372036854775807, 0.30000000000000004]")
    assert.are.equal("integer", math.type(v[1]))
    assert.are.equal("float", math.type(v[2]))
    assert.are.equal("float", math.type(v[3]))
    assert.are.equal(100.0, v[3])
    assert.are.equal("integer", math.type(v[4]))
    assert.are.equal(math.maxinteger, v[5])
    assert.are.equal(0.1 + 0.2, v[6])
    for _, x in ipairs{math.pi, 1 / 3, 5e-324, 1.7976931348623157e308, -123.456e-7} do
      local back = json.decode(json.encode(x))
      assert.are.equal(x, back)
      assert.are.equal("float", math.type(back))
    end
  end)

  it("sorts object keys and tells arrays from objects", function()
    assert.are.equal('{"a":[true,false,null],"b":{},"c":[],"z":"s"}',
                     json.encode{z = "s", a = {true, false, json.null}, b = {}, c = json.array()})
    local v = json.decode('{"a": [1, null, 3], "b": null}')
    assert.are.equal(3, #v.a)
    assert.are.equal(json.null, v.a[2])
    assert.are.equal(json.null, v.b)
  end)

  it("escapes and unescapes strings, \\u escapes and surrogate pairs included", function()
    assert.are.equal([["q\"b\\n\nt\tc\u0001d]] .. "\127" .. [[é"]],
                     json.encode('q"b\\n\nt\tc\1d\127é'))
    assert.are.equal('a"\\/\b\f\n\r\tz', json.decode([["a\"\\\/\b\f\n\r\tz"]]))
    assert.are.equal("é€😀", json.decode([["\u00e9\u20AC\ud83d\ude00"]]))
    assert.are.equal("é€😀", json.decode('"é€😀"'))
    local s = "tab\t, nul \0, ☃ and \"quotes\""
    assert.are.equal(s, json.decode(json.encode(s)))
  end)

  it("round-trips nested values", function()
    local v = {class = "X", args = {1, {k = {2.5, "s"}}, json.null, false}}
    local text = json.encode(v)
    assert.are.equal(text, json.encode(json.decode(text)))
    assert.are.same(v, json.decode(text))
  end)

  it("refuses what JSON cannot hold", function()
    H.fails("json.encode: cannot encode a function (at $[2])", json.encode, {1, print})
    H.fails("json.encode: NaN has no JSON form (at $)", json.encode, 0 / 0)
    H.fails("json.encode: inf has no JSON form (at $.x)", json.encode, {x = math.huge})
    H.fails("table mixes string and integer keys", json.encode, {1, a = 2})
    H.fails("array has holes (put json.null in them)", json.encode, {1, nil, 3})
    H.fails("cannot encode a table with a float key", json.encode, {[1.5] = 1})
    H.fails("string is not valid UTF-8", json.encode, "\255")
    local cyc = {}
    cyc.self = cyc
    H.fails("nesting deeper than 256 (a cycle?)", json.encode, cyc)
  end)

  it("decodes strictly and names the position of an error", function()
    local cases = {
      {"[1,]", "expected a value at position 4"},
      {"[1 2]", "expected ',' or ']' in an array at position 4"},
      {"01", "number with a leading zero at position 1"},
      {"1.", "expected a digit after '.' at position 2"},
      {"1e+", "expected a digit in the exponent at position 2"},
      {"{'a': 1}", "expected a string key at position 2"},
      {'{"a" 1}', "expected ':' after a key at position 6"},
      {'{"a": 1, "a": 2}', "duplicate key 'a' at position 10"},
      {'"abc', "unterminated string at position 1"},
      {'"a\tb"', "control character in a string (escape it) at position 3"},
      {[["\x"]], "invalid escape at position 2"},
      {[["\ud800"]], "high surrogate without a low surrogate after it at position 2"},
      {[["\udc00"]], "lone low surrogate at position 2"},
      {[["\u12"]], "expected 4 hex digits after \\u at position 2"},
      {"nul", "expected a value at position 1"},
      {"1 2", "unexpected text after the value at position 3"},
      {"", "expected a value at position 1 at the end of the text"},
      {'"\255"', "invalid UTF-8 at position 2"},
      {("["):rep(300), "nesting deeper than 256 at position 257"},
    }
    for _, c in ipairs(cases) do
      H.fails("json.decode: " .. c[2], json.decode, c[1])
    end
    H.fails("json.decode: expected a string, got nil", json.decode)
  end)
end)

describe("Module:get_config and nn.from_config", function()
  it("record the constructor arguments, integers and floats apart", function()
    local cfg = nn.Linear(3, 4):get_config()
    assert.are.equal("Linear", cfg.class)
    assert.are.same({3, 4}, cfg.args)
    assert.are.equal("integer", math.type(cfg.args[1]))
    local back = json.decode(json.encode(cfg))
    assert.are.equal("integer", math.type(back.args[2]))
    local leaky = json.decode(json.encode(nn.LeakyReLU(1.0):get_config()))
    assert.are.equal("float", math.type(leaky.args[1]))
    assert.are.equal(1.0, nn.from_config(leaky).negative_slope)
  end)

  it("keep nil arguments in their place", function()
    local cfg = nn.Conv2d(1, 2, 3, nil, 1):get_config()
    assert.are.equal('{"args":[1,2,3,null,1],"class":"Conv2d"}', json.encode(cfg))
    local c = nn.from_config(json.decode(json.encode(cfg)))
    assert.are.same({1, 1}, c.padding)
    assert.are.same({1, 1}, c.stride)
  end)

  it("copy option tables, so that changing them later changes nothing", function()
    local opts = {stride = {2, 2}, padding = 1}
    local c = nn.Conv2d(1, 2, 3, opts)
    opts.stride[1], opts.padding = 3, 0
    local c2 = nn.from_config(c:get_config())
    assert.are.same({2, 2}, c2.stride)
    assert.are.same({1, 1}, c2.padding)
  end)

  it("describe nested modules, tensors and non-finite floats", function()
    local loss = nn.CrossEntropyLoss{weight = ember.tensor({1, 2.5, 0.1}), label_smoothing = 0.1}
    local cfg = json.decode(json.encode(loss:get_config()))
    local w = cfg.args[1].weight.__tensor
    assert.are.equal("float32", w.dtype)
    assert.are.same({3}, w.shape)
    local loss2 = nn.from_config(cfg)
    assert.is_true(loss2.weight:equal(loss.weight))
    local logits, y = ember.randn(4, 3), ember.tensor({1, 2, 3, 1}, {dtype = "int64"})
    assert.are.equal(loss(logits, y):item(), loss2(logits, y):item())

    local Holder = nn.Module:extend("SaveLoadHolder")
    function Holder:init(inner, scale, mask)
      self.inner, self.scale, self.mask = inner, scale, mask
    end
    local h = Holder(nn.Sequential{nn.Linear(2, 2)}, -math.huge,
                     ember.tensor({{true, false}}, {dtype = "bool"}))
    local text = json.encode(h:get_config())
    assert.truthy(text:find('{"__float":"-inf"}', 1, true))
    local h2 = nn.from_config(json.decode(text))
    assert.are.equal(-math.huge, h2.scale)
    assert.are.equal("Sequential", getmetatable(h2.inner).__name)
    assert.are.equal("bool", h2.mask.dtype)
    assert.is_true(h2.mask:equal(h.mask))
  end)

  it("reject what cannot be serialized, naming the argument", function()
    local Foo = nn.Module:extend("SaveLoadFoo")
    function Foo:init() end
    H.fails("get_config: cannot serialize argument 2 of SaveLoadFoo (a function)",
            function() return Foo(1, print):get_config() end)
    H.fails("cannot serialize argument 1 of SaveLoadFoo (a function at .fn)",
            function() return Foo({fn = print}):get_config() end)
    local cyc = {}
    cyc[1] = cyc
    H.fails("cannot serialize argument 1 of SaveLoadFoo (a table that contains itself at [1])",
            function() return Foo(cyc):get_config() end)
    H.fails("cannot serialize argument 1 of SaveLoadFoo (a table mixing string and integer keys)",
            function() return Foo({1, a = 2}):get_config() end)
    H.fails("cannot serialize argument 1 of SaveLoadFoo (a userdata)",
            function() return Foo(io.stdout):get_config() end)
    local seq = nn.Sequential{nn.ReLU()}
    seq:add_module("head", nn.ReLU())
    H.fails("get_config: layer 2 of Sequential is named 'head'", seq.get_config, seq)
  end)

  it("rebuild only known classes from well-formed configs", function()
    H.fails("nn.from_config: unknown module class 'MyNet' (define it with nn.Module:extend " ..
            "before loading)", nn.from_config, {class = "MyNet", args = {}})
    H.fails("nn.from_config: expected a config {class = name, args = {...}}, got a number",
            nn.from_config, 3)
    H.fails("nn.from_config: cannot rebuild Linear: Linear: in_features must be an integer, " ..
            "got string", nn.from_config, {class = "Linear", args = {"x", 2}})
  end)

  it("let the latest class of a name win", function()
    local A = nn.Module:extend("SaveLoadTwice")
    function A:init() self.kind = "first" end
    local B = nn.Module:extend("SaveLoadTwice")
    function B:init() self.kind = "second" end
    assert.are.equal("second", nn.from_config(A():get_config()).kind)
  end)
end)

describe("model:save and nn.load", function()
  it("round-trip Linear, Conv2d, pooling, Flatten and activations in a Sequential", function()
    ember.manual_seed(1)
    local m = nn.Sequential{
      nn.Conv2d(2, 4, 3, {padding = "same", stride = {1, 1}}), nn.LeakyReLU(0.2),
      nn.Conv2d(4, 4, {3, 2}, {stride = {2, 1}, padding = {1, 0}, bias = false}),
      nn.MaxPool2d(2, {ceil_mode = true}), nn.AvgPool2d({2, 1}, 1, 0, {count_include_pad = false}),
      nn.GELU{approximate = "tanh"}, nn.Flatten(2, -1), nn.Linear(8, 5), nn.Tanh(),
      nn.Linear(5, 3, {bias = false}), nn.Sigmoid(), nn.Softmax(2),
    }
    local x = ember.randn(3, 2, 8, 5)
    assert.are.same({3, 3}, m(x):shape())
    check_reload(m, x)
  end)

  it("round-trip BatchNorm1d/2d with their running statistics", function()
    ember.manual_seed(2)
    local m = nn.Sequential{nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3, {momentum = 0.3}), nn.ReLU(),
                            nn.Flatten(), nn.Linear(12, 4), nn.BatchNorm1d(4, {eps = 1e-3})}
    for _ = 1, 3 do m(ember.randn(5, 1, 4, 4)) end   -- training mode: updates the stats
    local m2 = check_reload(m, ember.randn(2, 1, 4, 4))
    assert.are.equal(3, m2[2].num_batches_tracked:item())
    assert.is_true(m2[2].running_var:equal(m[2].running_var))
    assert.are.equal(0.3, m2[2].momentum)
    assert.are.equal(1e-3, m2[6].eps)
  end)

  it("round-trip LayerNorm, Embedding, Dropout and LogSoftmax", function()
    ember.manual_seed(3)
    local m = nn.Sequential{nn.Embedding(10, 4, {padding_idx = 1}), nn.Dropout(0.25),
                            nn.LayerNorm({3, 4}, {eps = 1e-6}), nn.Flatten(), nn.Linear(12, 2),
                            nn.LogSoftmax(-1)}
    local m2 = check_reload(m, ember.tensor({{1, 5, 10}, {2, 2, 3}}, {dtype = "int64"}))
    assert.are.equal(0.25, m2[2].p)
    assert.are.same({3, 4}, m2[3].normalized_shape)
  end)

  it("round-trip a user class with nested Sequentials, keeping PyTorch's tensor names", function()
    local Net = nn.Module:extend("SaveLoadNet")
    function Net:init(n_in, hidden, opts)
      self.body = nn.Sequential{nn.Linear(n_in, hidden), nn.ReLU(),
                                nn.Sequential{nn.Linear(hidden, hidden), nn.Tanh()}}
      self.head = nn.Linear(hidden, opts.classes)
      self.scale = ember.tensor({0.5}):requires_grad_(true)
    end
    function Net:forward(x) return self.head(self.body(x)) * self.scale end
    ember.manual_seed(4)
    local m = Net(3, 6, {classes = 2})
    local m2 = check_reload(m, ember.randn(4, 3))
    assert.are.equal("SaveLoadNet", getmetatable(m2).__name)
    local path = tmpfile()
    m:save(path)
    local tensors = ember.load(path)
    os.remove(path)
    local names = {}
    for name in pairs(tensors) do names[#names + 1] = name end
    table.sort(names)
    assert.are.same({"body.1.bias", "body.1.weight", "body.3.1.bias", "body.3.1.weight",
                     "head.bias", "head.weight", "scale"}, names)
  end)

  it("saves a Sequential as it is now, layers added later included", function()
    local m = nn.Sequential()
    m:add(nn.Linear(2, 3)):add(nn.ReLU()):add(nn.Linear(3, 1))
    local m2 = check_reload(m, ember.randn(5, 2))
    assert.are.equal(3, #m2)
  end)

  it("brings back a model converted to float64 as float64", function()
    local m = nn.Sequential{nn.Linear(3, 2), nn.BatchNorm1d(2)}:double()
    local m2 = check_reload(m, ember.randn(4, 3, {dtype = "float64"}))
    assert.are.equal("float64", m2[1].weight.dtype)
    assert.are.equal("int64", m2[2].num_batches_tracked.dtype)
  end)

  it("writes valid JSON metadata that describes the architecture", function()
    local path = tmpfile()
    nn.Sequential{nn.Linear(3, 4), nn.ReLU()}:save(path)
    local _, meta = ember.load(path)
    os.remove(path)
    assert.are.equal("pt", meta.format)
    assert.are.equal(ember._VERSION, meta["ember.version"])
    assert.is_nil(meta["ember.optimizer"])
    local arch = json.decode(meta["ember.architecture"])
    assert.are.equal("Sequential", arch.class)
    assert.are.equal(2, #arch.args)
    assert.are.same({class = "Linear", args = {3, 4}}, arch.args[1].__module)
    assert.are.equal("integer", math.type(arch.args[1].__module.args[1]))
    assert.are.same({class = "ReLU", args = {}}, arch.args[2].__module)
  end)

  it("round-trips the caller's metadata", function()
    local m = nn.Linear(2, 2)
    local m2, meta = round_trip(m, {metadata = {author = "me", note = "ünï\n\"x\""}})
    assert.are.equal("me", meta.author)
    assert.are.equal("ünï\n\"x\"", meta.note)
    assert.are.equal("Linear", getmetatable(m2).__name)
  end)

  it("saves the optimizer state and compile settings of a compiled model", function()
    ember.manual_seed(5)
    local m = nn.Sequential{nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)}
    local opt = optim.Adam(m:parameters(), {lr = 0.01, betas = {0.8, 0.99}, amsgrad = true})
    m:compile{optimizer = opt, loss = nn.CrossEntropyLoss{label_smoothing = 0.05},
              metrics = {"accuracy"}}
    local x, y = ember.randn(6, 4), ember.tensor({1, 2, 3, 3, 2, 1}, {dtype = "int64"})
    local function step(model)
      model.optimizer:zero_grad()
      model.loss_fn(model(x), y):backward()
      model.optimizer:step()
    end
    for _ = 1, 3 do step(m) end

    local path = tmpfile()
    m:save(path)
    local tensors, meta = ember.load(path)
    assert.is_not_nil(tensors["optimizer.state.1.exp_avg"])
    assert.is_not_nil(tensors["optimizer.state.4.max_exp_avg_sq"])
    local spec = json.decode(meta["ember.optimizer"])
    assert.are.equal("Adam", spec.class)
    assert.are.same({{"1.weight", "1.bias", "3.weight", "3.bias"}}, spec.param_names)
    assert.are.same({class = "CrossEntropyLoss", args = {{label_smoothing = 0.05}}},
                    json.decode(meta["ember.compile"]).loss)

    local m2 = nn.load(path)
    os.remove(path)
    same_state(m, m2)
    local opt2 = m2.optimizer
    assert.are.equal("Adam", opt2.__name)
    assert.are.same({0.8, 0.99}, opt2.param_groups[1].betas)
    assert.is_true(opt2.param_groups[1].amsgrad)
    assert.are.equal(m2[1].weight, opt2.param_groups[1].params[1])
    assert.are.equal(3, opt2.state[m2[3].bias].step)
    assert.are.same({"accuracy"}, m2.compiled_metrics)
    assert.are.equal(0.05, m2.loss_fn._opts.label_smoothing)
    step(m)
    step(m2)
    same_state(m, m2)
    local sd, sd2 = opt:state_dict(), opt2:state_dict()
    for i = 1, 4 do
      assert.are.equal(sd.state[i].step, sd2.state[i].step)
      assert.is_true(sd.state[i].exp_avg_sq:equal(sd2.state[i].exp_avg_sq))
    end
  end)

  it("keeps a loss given by name and leaves the optimizer out on request", function()
    local m = nn.Sequential{nn.Linear(2, 1)}
    m:compile{optimizer = optim.SGD(m:parameters(), {lr = 0.1, momentum = 0.9}), loss = "mse",
              metrics = {"mae"}}
    local m2 = round_trip(m)
    assert.are.equal("SGD", m2.optimizer.__name)
    assert.are.equal(0.9, m2.optimizer.param_groups[1].momentum)
    assert.are.equal("mse", m2.compiled_loss)
    assert.are.same({"mae"}, m2.compiled_metrics)
    local m3, meta = round_trip(m, {include_optimizer = false})
    assert.is_nil(meta["ember.optimizer"])
    assert.is_nil(meta["ember.compile"])
    assert.is_nil(m3.optimizer)
  end)

  it("rejects what it cannot save, leaving no file behind", function()
    local Foo = nn.Module:extend("SaveLoadBad")
    function Foo:init() self.fc = nn.Linear(1, 1) end
    local path, keep = tmpfile(), tmpfile()
    nn.Linear(2, 3):save(keep)
    H.fails("save: cannot serialize argument 1 of SaveLoadBad (a function)",
            function() Foo(print):save(keep) end)
    assert.are.equal(3, nn.load(keep).out_features, "a failed save changed the earlier file")
    os.remove(keep)
    H.fails("save: cannot serialize argument 1 of SaveLoadBad (a function)",
            function() Foo(print):save(path) end)
    H.fails("save: cannot serialize argument 1 of SaveLoadBad (a function)",
            function() nn.Sequential{Foo(print)}:save(path) end)
    local m = nn.Linear(1, 1)
    H.fails("save: metadata key 'ember.mine' is reserved", m.save, m, path,
            {metadata = {["ember.mine"] = "x"}})
    H.fails("save: metadata must map strings to strings, got a string -> a number", m.save, m,
            path, {metadata = {n = 1}})
    H.fails("save: unknown option 'compress'", m.save, m, path, {compress = true})
    H.fails("save: include_optimizer must be a boolean, got a string", m.save, m, path,
            {include_optimizer = "yes"})
    H.fails("save: expected a file path (a non-empty string), got a number", m.save, m, 3)
    assert.is_false(exists(path))
  end)

  it("refuses files it cannot rebuild a model from, naming the file", function()
    local path = tmpfile()
    ember.save(path, {weight = ember.zeros(2, 2)})
    H.fails(("nn.load: '%s' has no architecture (it holds tensors only; build the model and " ..
             "use model:load_state_dict(ember.load(path)))"):format(path), nn.load, path)
    ember.save(path, {}, {["ember.architecture"] = '{"class": "MyNet", "args": []}'})
    H.fails("nn.load: unknown module class 'MyNet' (define it with nn.Module:extend before " ..
            "loading)", nn.load, path)
    ember.save(path, {}, {["ember.architecture"] = '{"class": "Linear", "args": [2,'})
    H.fails(("nn.load: '%s' has a corrupt ember.architecture entry: json.decode: expected a " ..
             "value at position 32 at the end of the text"):format(path), nn.load, path)
    ember.save(path, {weight = ember.zeros(2, 3)},
               {["ember.architecture"] = '{"class": "Linear", "args": [2, 2]}'})
    H.fails(("nn.load: the weights in '%s' do not fit the rebuilt Linear: load_state_dict: " ..
             "error loading into Linear: missing keys: bias"):format(path), nn.load, path)
    os.remove(path)
    H.fails("nn.load: expected a file path (a non-empty string), got nil", nn.load)
    H.fails("nn.load: cannot open '" .. path .. "'", nn.load, path)
  end)
end)
