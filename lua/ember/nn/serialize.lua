--- ember.nn.serialize: a model's architecture as data, and model files
-- (model:save, nn.load, nn.from_config, Module:get_config; internal, users
-- see these through nn and the Module methods).
--
-- A module is described by its class name and the arguments its
-- constructor was called with (module.lua records them), as Keras's
-- get_config does: {class = "Conv2d", args = {1, 32, 3, {padding = "same"}}}.
-- Sequential lists its current layers instead.  Rebuilding calls the class
-- again with the same arguments, so a user class saves as well as a
-- built-in one, as long as it is defined (nn.Module:extend) before loading.
--
-- Argument values become JSON-ready data (see to_plain):
--   nil            json.null (so an argument list keeps its length)
--   module         {__module = <its config>}
--   tensor         {__tensor = {dtype =, shape =, data = <flat list>}}
--   inf, -inf, nan {__float = "inf" | "-inf" | "nan"} (JSON has no form)
-- and numbers keep their Lua type: ember.json writes floats with a '.'.
--
-- A model file is one safetensors file (ember.save) whose tensors are the
-- state_dict, under PyTorch's names, and whose __metadata__ holds:
--   format               "pt" (what PyTorch's safetensors helpers write)
--   ember.version        the writer's version
--   ember.architecture   JSON of get_config()
--   ember.optimizer      (a compiled model) JSON {class, defaults,
--                        param_names, state_dict}: the optimizer's
--                        state_dict with each tensor replaced by
--                        {__file = "optimizer.state.<i>.<key>"}, the name
--                        of the file's tensor that holds it
--   ember.compile        (a compiled model) JSON {loss = <config of the
--                        loss module, or the loss name given to
--                        compile>, metrics = {names}}
-- plus the caller's own string keys.
local ember = require "ember"
local check = require "ember.check"
local json = require "ember.json"
local Module = require "ember.nn.module"

local S = {}

-- {======================================================================
-- Errors
-- =======================================================================

-- The public function being run ("save", "nn.load", ...), which names
-- every error, however deep it is raised.  get_config and from_config are
-- also called inside save and load.
local caller = nil

local function fname(default) return caller or default end

--- Raise msg blaming the first caller outside ember's nn and json files,
-- so the position is the user's line however deep the check sits.
local fail = require("ember.blame").failer("ember/nn/", "ember/json.lua")
S.fail = fail

--- The name errors start with: the running public function, or default.
S.fname = fname

--- Run fn(...) with caller set to name (unless an outer call set it).
local function as(name, fn, ...)
  if caller then return fn(...) end
  caller = name
  local r = table.pack(pcall(fn, ...))
  caller = nil
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

--- An error message without the "file:line: " that error() put before it.
local function bare(msg)
  return (tostring(msg):gsub("^[^\n]-:%d+: ", ""))
end

local ARTICLE = {["nil"] = "nil", boolean = "a boolean", number = "a number",
                 string = "a string", table = "a table", ["function"] = "a function",
                 userdata = "a userdata", thread = "a thread"}

--- "a function", "a tensor", "a module", "a string", ... for messages.
local function describe(v)
  if ember.is_tensor(v) then return "a tensor" end
  if Module.is_module(v) then return "a module" end
  return ARTICLE[type(v)]
end

-- }======================================================================

-- {======================================================================
-- Values -> JSON-ready data, and back
-- =======================================================================

local DTYPES = {float32 = true, float64 = true, int32 = true, int64 = true, uint8 = true,
                bool = true}

local function float_plain(v)
  if v ~= v then return {__float = "nan"} end
  if v == math.huge then return {__float = "inf"} end
  if v == -math.huge then return {__float = "-inf"} end
  return v
end

--- A tensor as {__tensor = {dtype, shape, data}} (data is flat, row-major).
local function tensor_plain(t)
  t = t:detach()
  if t.device ~= "cpu" then t = t:cpu() end
  local data = json.array(t:numel() > 0 and t:reshape(-1):totable() or {})
  if t.dtype == "float32" or t.dtype == "float64" then
    for i = 1, #data do data[i] = float_plain(data[i]) end
  end
  return {__tensor = {dtype = t.dtype, shape = json.array(t:shape()), data = data}}
end

local to_plain

--- A plain table's copy: an array (positive integer keys; holes become
-- json.null) or a map (string keys).
local function table_plain(v, subject, path, active)
  local cannot = function(what)
    fail(("%s: cannot serialize %s (%s%s)"):format(fname("get_config"), subject, what,
         path ~= "" and " at " .. path or ""))
  end
  if getmetatable(v) ~= nil then cannot("a table with a metatable") end
  if active[v] then cannot("a table that contains itself") end
  local count, max, strings = 0, 0, false
  for k in pairs(v) do
    count = count + 1
    if type(k) == "string" then strings = true
    elseif math.type(k) == "integer" and k >= 1 then max = math.max(max, k)
    else cannot(("a table with %s key"):format(describe(k))) end
  end
  if strings and max > 0 then cannot("a table mixing string and integer keys") end
  if max > 2 * count + 16 then cannot("a sparse table") end
  active[v] = true
  local out
  if max > 0 then
    out = json.array()
    for i = 1, max do
      local x = v[i]
      out[i] = x == nil and json.null or to_plain(x, subject, path .. "[" .. i .. "]", active)
    end
  else
    out = {}
    for k, x in pairs(v) do out[k] = to_plain(x, subject, path .. "." .. k, active) end
  end
  active[v] = nil
  return out
end

--- v as JSON-ready data (see the header).  subject names v in errors
-- ("argument 2 of Foo"), path where it sits inside v.
to_plain = function(v, subject, path, active)
  local t = type(v)
  if t == "nil" then return json.null end
  if t == "boolean" then return v end
  if t == "number" then return math.type(v) == "float" and float_plain(v) or v end
  if t == "string" then
    if utf8.len(v) then return v end
    fail(("%s: cannot serialize %s (a string that is not valid UTF-8%s)"):format(
         fname("get_config"), subject, path ~= "" and " at " .. path or ""))
  end
  if ember.is_tensor(v) then return tensor_plain(v) end
  if Module.is_module(v) then return {__module = v:get_config()} end
  if t == "table" then return table_plain(v, subject, path, active or {}) end
  fail(("%s: cannot serialize %s (%s%s)"):format(fname("get_config"), subject, describe(v),
       path ~= "" and " at " .. path or ""))
end

--- The only key of a table that has exactly one, else nil.
local function only_key(t)
  local k = next(t)
  if k ~= nil and next(t, k) == nil then return k end
  return nil
end

local from_config

--- {__tensor = ...} back into a tensor, checking it all first.
local function tensor_from(spec)
  local f = fname("nn.from_config")
  if type(spec) ~= "table" or not DTYPES[spec.dtype] or type(spec.shape) ~= "table"
     or type(spec.data) ~= "table" then
    fail(f .. ": a __tensor entry needs a dtype, a shape and a data list")
  end
  local n = 1
  for _, d in ipairs(spec.shape) do
    if math.type(d) ~= "integer" or d < 0 then
      fail(("%s: a __tensor's shape holds %s, expected sizes >= 0"):format(f, tostring(d)))
    end
    n = n * d
  end
  if #spec.data ~= n then
    fail(("%s: a __tensor of shape [%s] needs %d values, got %d")
         :format(f, table.concat(spec.shape, ","), n, #spec.data))
  end
  local data = {}
  for i = 1, n do
    local x = spec.data[i]
    if type(x) == "table" and type(x.__float) == "string" then x = tonumber(x.__float) end
    if type(x) ~= "number" and type(x) ~= "boolean" then
      fail(("%s: value %d of a __tensor is %s, expected a number"):format(f, i, describe(x)))
    end
    data[i] = x
  end
  local t = ember.tensor(data, {dtype = spec.dtype})
  return t:reshape(spec.shape)
end

local FLOATS = {inf = math.huge, ["-inf"] = -math.huge, nan = 0 / 0}

--- JSON-ready data (decoded or from get_config) back into Lua values.
local function from_plain(v)
  if v == json.null then return nil end
  if type(v) ~= "table" then return v end
  local k = only_key(v)
  if k == "__module" then return from_config(v.__module) end
  if k == "__tensor" then return tensor_from(v.__tensor) end
  if k == "__float" and FLOATS[v.__float] then return FLOATS[v.__float] end
  local out = {}
  for key, x in pairs(v) do out[key] = from_plain(x) end
  return out
end

-- }======================================================================

-- {======================================================================
-- Configs
-- =======================================================================

local function class_name(m) return getmetatable(m).__class.__name end

--- The config of module m whose constructor arguments are args (packed:
-- args.n counts them).  Sequential:get_config calls this with its layers.
function S.config_from_args(m, args)
  local name = class_name(m)
  if args == nil then
    fail(("%s: %s was not made by its constructor, so there are no arguments to save")
         :format(fname("get_config"), name))
  end
  local out = json.array()
  for i = 1, args.n or #args do
    out[i] = to_plain(args[i], ("argument %d of %s"):format(i, name), "")
  end
  return {class = name, args = out}
end

--- Module:get_config(): the class name and the recorded constructor
-- arguments as data.
function S.get_config(m)
  if not Module.is_module(m) then
    fail("get_config: expected a module (m:get_config()), got " .. describe(m))
  end
  return S.config_from_args(m, Module._constructor_args(m))
end

--- A new module from a config (see the header), children first.
from_config = function(cfg)
  local f = fname("nn.from_config")
  if type(cfg) ~= "table" or type(cfg.class) ~= "string" or type(cfg.args) ~= "table" then
    fail(("%s: expected a config {class = name, args = {...}}, got %s"):format(f,
         type(cfg) == "table" and "a table without them" or describe(cfg)))
  end
  local C = Module._class_named(cfg.class)
  if C == nil then
    fail(("%s: unknown module class '%s' (define it with nn.Module:extend before loading)")
         :format(f, cfg.class))
  end
  local n, args = cfg.args.n or #cfg.args, {}
  for i = 1, n do args[i] = from_plain(cfg.args[i]) end
  local ok, m = pcall(C, table.unpack(args, 1, n))
  if not ok then fail(("%s: cannot rebuild %s: %s"):format(f, cfg.class, bare(m))) end
  return m
end

--- nn.from_config(cfg): a new module built from cfg (get_config's result,
-- or the same decoded from JSON).
function S.from_config(cfg) return as("nn.from_config", from_config, cfg) end

-- }======================================================================

-- {======================================================================
-- Saving
-- =======================================================================

local function is_optimizer(o)
  return type(o) == "table" and not Module.is_module(o) and type(o.param_groups) == "table"
     and type(o.state_dict) == "function" and type(o.__name) == "string"
end

--- The "ember.optimizer" JSON of opt bound to model's parameters; adds
-- the state tensors to tensors.
local function optimizer_json(model, opt, tensors)
  local name_of = {}
  for name, p in model:named_parameters() do name_of[p] = name end
  local sd = opt:state_dict()
  local param_names, groups = json.array(), json.array()
  for gi, g in ipairs(opt.param_groups) do
    local names = json.array()
    for i, p in ipairs(g.params) do
      names[i] = name_of[p] or fail(("save: parameter %d of the optimizer's group %d is not " ..
        "a parameter of the model (save with {include_optimizer = false})"):format(i, gi))
    end
    param_names[gi] = names
    local saved = {}
    for k, v in pairs(sd.param_groups[gi]) do
      if k ~= "params" then
        saved[k] = to_plain(v, ("option '%s' of the optimizer's group %d"):format(k, gi), "")
      end
    end
    saved.params = json.array(sd.param_groups[gi].params)
    groups[gi] = saved
  end
  local state = {}
  for id, st in pairs(sd.state) do
    local s = {}
    for k, v in pairs(st) do
      if ember.is_tensor(v) then
        local entry = ("optimizer.state.%d.%s"):format(id, k)
        if tensors[entry] ~= nil then
          fail(("save: the model has a tensor named '%s', which the optimizer's state needs " ..
                "(save with {include_optimizer = false})"):format(entry))
        end
        tensors[entry], s[k] = v, {__file = entry}
      else
        s[k] = to_plain(v, ("state '%s' of the optimizer"):format(k), "")
      end
    end
    state[tostring(id)] = s
  end
  return json.encode{
    class = opt.__name,
    defaults = to_plain(opt.defaults, "the optimizer's defaults", ""),
    param_names = param_names,
    state_dict = {state = state, param_groups = groups},
  }
end

--- The "ember.compile" JSON: the loss (a loss module's config, or the
-- name compile was given) and the metric names.  A loss function is left
-- out: code cannot be saved.
local function compile_json(model)
  local out = {metrics = json.array()}
  if type(model.compiled_loss) == "string" then out.loss = model.compiled_loss
  elseif Module.is_module(model.loss_fn) then out.loss = model.loss_fn:get_config() end
  local metrics = model.compiled_metrics
  if metrics ~= nil and type(metrics) ~= "table" then
    fail("save: model.compiled_metrics must be a list of metric names, got " ..
         describe(metrics))
  end
  for i, m in ipairs(metrics or {}) do
    if type(m) ~= "string" then
      fail(("save: metric %d of the compiled model is %s; only metrics given by name can be " ..
            "saved (save with {include_optimizer = false})"):format(i, describe(m)))
    end
    out.metrics[i] = m
  end
  return json.encode(out)
end

local SAVE_OPTS = {include_optimizer = true, metadata = true}

local function save(model, path, opts)
  if not Module.is_module(model) then
    fail("save: expected a module (model:save(path)), got " .. describe(model))
  end
  if type(path) ~= "string" or path == "" then
    fail("save: expected a file path (a non-empty string), got " .. describe(path))
  end
  opts = check.options("save", opts, SAVE_OPTS, fail)
  local include = opts.include_optimizer
  if include == nil then include = true end
  if type(include) ~= "boolean" then
    fail("save: include_optimizer must be a boolean, got " .. describe(include))
  end
  local extra = opts.metadata or {}
  if type(extra) ~= "table" then
    fail("save: metadata must be a table of strings, got " .. describe(extra))
  end
  for k, v in pairs(extra) do
    if type(k) ~= "string" or type(v) ~= "string" then
      fail(("save: metadata must map strings to strings, got %s -> %s")
           :format(describe(k), describe(v)))
    end
    if k:sub(1, 6) == "ember." then
      fail(("save: metadata key '%s' is reserved (keys starting with 'ember.' are Ember's own)")
           :format(k))
    end
  end

  local meta = {format = "pt", ["ember.version"] = ember._VERSION,
                ["ember.architecture"] = json.encode(model:get_config())}
  local tensors = model:state_dict()
  -- tied weights (m[2].weight = m[1].weight): saved under both names, as
  -- safetensors has no aliases, and tied again by nn.load
  local ties = model:_ties()
  if next(ties) then meta["ember.ties"] = json.encode(ties) end
  local opt = model.optimizer
  if include and opt ~= nil then
    if not is_optimizer(opt) then
      fail("save: model.optimizer is " .. describe(opt) .. ", not an optimizer")
    end
    meta["ember.optimizer"] = optimizer_json(model, opt, tensors)
    meta["ember.compile"] = compile_json(model)
  end
  for k, v in pairs(extra) do meta[k] = v end
  ember.save(path, tensors, meta)
end

--- model:save(path [, {include_optimizer = true, metadata = {}}]).
function S.save(model, path, opts) return as("save", save, model, path, opts) end

-- }======================================================================

-- {======================================================================
-- Loading
-- =======================================================================

--- Decode the JSON metadata entry key of the file path.
local function decode_entry(path, meta, key)
  local ok, v = pcall(json.decode, meta[key])
  if not ok then
    fail(("nn.load: '%s' has a corrupt %s entry: %s"):format(path, key, bare(v)))
  end
  if type(v) ~= "table" then
    fail(("nn.load: '%s' has a corrupt %s entry: expected a JSON object"):format(path, key))
  end
  return v
end

--- Make the model's floating tensors the dtype of the saved ones when
-- those all share one (a model saved after model:double(), or in
-- bfloat16).  Where Module:to refuses the dtype (it checks before it
-- changes anything), load_state_dict converts the weights instead.
local function match_dtype(model, weights)
  local saved
  for _, t in pairs(weights) do
    if t:is_floating_point() then
      if saved and saved ~= t.dtype then return end
      saved = saved or t.dtype
    end
  end
  if not saved then return end
  for _, t in pairs(model:state_dict()) do
    if t:is_floating_point() and t.dtype ~= saved then
      pcall(model.to, model, saved)
      return
    end
  end
end

--- Rebuild the optimizer saved in the file over model's parameters.
local function load_optimizer(path, model, spec, tensors)
  local optim = require "ember.optim"
  local corrupt = function(what)
    fail(("nn.load: '%s' has a corrupt ember.optimizer entry: %s"):format(path, what))
  end
  local C = type(spec.class) == "string" and optim[spec.class]
  if type(C) ~= "table" or type(C.options) ~= "table" then
    fail(("nn.load: '%s' holds an optimizer of unknown class '%s' (ember.optim has no such " ..
          "optimizer)"):format(path, tostring(spec.class)))
  end
  local sd, names = spec.state_dict, spec.param_names
  if type(sd) ~= "table" or type(sd.param_groups) ~= "table" or type(sd.state) ~= "table"
     or type(names) ~= "table" or #names ~= #sd.param_groups then
    corrupt("expected state_dict {state, param_groups} and a param_names list per group")
  end
  local param = {}
  for name, p in model:named_parameters() do param[name] = p end
  local defaults = from_plain(spec.defaults or {})
  local opt = next(defaults) ~= nil and C(defaults) or C()
  local groups = {}
  for gi, saved in ipairs(sd.param_groups) do
    saved = from_plain(saved)
    local g = {params = {}}
    for k, v in pairs(saved) do
      if k ~= "params" then g[k] = v end
    end
    if type(names[gi]) ~= "table" then corrupt("param_names of group " .. gi) end
    for i, name in ipairs(names[gi]) do
      g.params[i] = param[name] or corrupt(("group %d names parameter '%s', which the model " ..
                                            "does not have"):format(gi, tostring(name)))
    end
    opt:add_param_group(g)
    groups[gi] = saved
  end
  local state = {}
  for id, st in pairs(sd.state) do
    local i = math.tointeger(tonumber(id))
    if not i or type(st) ~= "table" then corrupt("state key '" .. tostring(id) .. "'") end
    local s = {}
    for k, v in pairs(st) do
      if type(v) == "table" and only_key(v) == "__file" then
        s[k] = tensors[v.__file] or corrupt(("the file has no tensor '%s'")
                                            :format(tostring(v.__file)))
      else
        s[k] = from_plain(v)
      end
    end
    state[i] = s
  end
  sd = {state = state, param_groups = groups}
  opt:load_state_dict(sd)
  return opt, sd
end

local LOAD_OPTS = {mmap = true}

local function load(path, opts)
  if type(path) ~= "string" or path == "" then
    fail("nn.load: expected a file path (a non-empty string), got " .. describe(path))
  end
  opts = check.options("nn.load", opts, LOAD_OPTS, fail)
  if opts.mmap ~= nil and type(opts.mmap) ~= "boolean" then
    fail("nn.load: option mmap must be a boolean, got " .. describe(opts.mmap))
  end
  -- with mmap the weights are read from the mapping as load_state_dict
  -- copies them into the rebuilt model: no buffer holds the whole file
  local ok, tensors, meta = pcall(ember.load, path, {mmap = opts.mmap == true})
  if not ok then fail("nn.load: " .. bare(tensors):gsub("^load: ", "")) end
  if meta["ember.architecture"] == nil then
    fail(("nn.load: '%s' has no architecture (it holds tensors only; build the model and " ..
          "use model:load_state_dict(ember.load(path)))"):format(path))
  end
  local model = from_config(decode_entry(path, meta, "ember.architecture"))

  -- the model's weights are the tensors the optimizer does not name
  local opt_spec = meta["ember.optimizer"] and decode_entry(path, meta, "ember.optimizer")
  local weights, held = {}, {}
  if opt_spec and type(opt_spec.state_dict) == "table"
     and type(opt_spec.state_dict.state) == "table" then
    for _, st in pairs(opt_spec.state_dict.state) do
      for _, v in pairs(type(st) == "table" and st or {}) do
        if type(v) == "table" and type(v.__file) == "string" then held[v.__file] = true end
      end
    end
  end
  for name, t in pairs(tensors) do
    if not held[name] then weights[name] = t end
  end
  match_dtype(model, weights)
  local ok, err = pcall(model.load_state_dict, model, weights)
  if not ok then
    fail(("nn.load: the weights in '%s' do not fit the rebuilt %s: %s")
         :format(path, class_name(model), bare(err)))
  end
  if meta["ember.ties"] ~= nil then
    local ties = decode_entry(path, meta, "ember.ties")
    local bad = type(ties) ~= "table"
    for k, v in pairs(bad and {} or ties) do
      if type(k) ~= "string" or type(v) ~= "string" then bad = true end
    end
    if bad then fail(("nn.load: '%s' has a malformed ember.ties entry"):format(path)) end
    ok, err = pcall(model._retie, model, ties)
    if not ok then fail(("nn.load: '%s': %s"):format(path, bare(err))) end
  end

  if opt_spec then
    local opt, sd = load_optimizer(path, model, opt_spec, tensors)
    local comp = meta["ember.compile"] and decode_entry(path, meta, "ember.compile") or {}
    local loss = comp.loss
    if type(loss) == "table" then loss = from_config(loss)
    elseif type(loss) ~= "string" then loss = nil end
    local metrics = {}
    for i, m in ipairs(type(comp.metrics) == "table" and comp.metrics or {}) do metrics[i] = m end
    if type(model.compile) == "function" and loss ~= nil then
      model:compile{optimizer = opt, loss = loss, metrics = metrics}
      -- in case compile bound the optimizer afresh (which drops its state)
      if model.optimizer ~= nil then model.optimizer:load_state_dict(sd) end
    else
      -- plain fields, not through __newindex: a loss module assigned to
      -- the model would become one of its children
      local fields = rawget(model, "_fields")
      fields.optimizer, fields.compiled_metrics = opt, metrics
      if Module.is_module(loss) then fields.loss_fn = loss end
    end
  end
  return model, meta
end

--- nn.load(path [, {mmap = false}]) -> model, metadata.
function S.load(path, opts) return as("nn.load", load, path, opts) end

-- }======================================================================

return S
