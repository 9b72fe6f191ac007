-- luarocks --lua-version=5.4 make rockspec/ember-scm-1.rockspec
-- builds the C module (ember.core) with the project's Makefile and
-- installs it with the Lua library, so the stock lua5.4 can require "ember".
rockspec_format = "3.0"
package = "ember"
version = "scm-1"
source = {
  url = "git+file:///dev/null",   -- built from the checkout with `luarocks make`
}
description = {
  summary = "A machine-learning engine in C, scripted from Lua",
  detailed = [[
Tensors with CPU kernels (OpenBLAS), broadcasting and PyTorch's type
promotion, 1-based indexing, and a Lua library on top.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4",
}
external_dependencies = {
  OPENBLAS = { library = "openblas" },
  ZLIB = { header = "zlib.h", library = "z" },   -- IDX files (ember.data)
  PNG = { header = "png.h", library = "png" },    -- images (data.read_image)
  JPEG = { header = "jpeglib.h", library = "jpeg" },
}
build = {
  type = "make",
  build_target = "rock",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INC = "$(LUA_INCDIR)",
  },
  install_target = "rock-install",
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
  },
}
test = {
  type = "busted",
}
