# Ember -- a machine-learning engine in C, scripted from Lua 5.4.
#
#   make          build ./ember, the Lua C module and libember
#   make run      install what is missing, build, run the main example
#   make test     install what is missing, build, run every spec
#   make asan     the specs under AddressSanitizer + UBSan
#   make leakcheck  specs under LeakSanitizer: no leaks from Ember
#   make tsan     concurrent lua_States (tools/threads_host.c) under ThreadSanitizer
#   make fuzz     the Lua-surface fuzzer under ASan+UBSan (FUZZ_SECONDS, FUZZ_SEED)
#   make fuzz-files  libFuzzer on the safetensors, IDX and image readers (and BPE)
#   make bench    benchmarks beside their peers (OpenBLAS, PyTorch)
#   make embed    the C host example (examples/embed)
#   make install PREFIX=/usr/local
#
# Nothing here downloads anything: `deps` installs Debian packages only.

LUA      ?= lua5.4
LUA_INC  ?= /usr/include/lua5.4
PREFIX   ?= /usr/local
BUILD    ?= build
SAN      ?=
CFLAGS   ?= -O2 -g
BUSTED   ?= busted --lua=$(LUA)
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer

WARN     := -Wall -Wextra -pedantic -Wshadow -Wmissing-prototypes
CPPFLAGS := -D_POSIX_C_SOURCE=200809L -Icore/include -I$(LUA_INC)
XCFLAGS  := -std=c11 -fPIC -fopenmp -fno-math-errno $(WARN) $(CFLAGS) $(SAN)
# OpenBLAS's OpenMP build (Debian's libopenblas0-openmp, found first through
# the run path): it shares libgomp's thread pool with Ember's own loops.  The
# default pthread build keeps a second pool whose threads fight OpenMP's for
# the cores, which makes a CNN training step several times slower
# (figures in bench/NOTES.md).
OPENBLAS_OMP ?= /usr/lib/$(shell $(CC) -dumpmachine)/openblas-openmp
comma    := ,
BLAS_LIBS := -lopenblas $(if $(wildcard $(OPENBLAS_OMP)/libopenblas.so.0),-Wl$(comma)-rpath$(comma)$(OPENBLAS_OMP))
LIBS     := $(BLAS_LIBS) -lpng -ljpeg -lz -lm -fopenmp $(SAN)
# What a C host linking libember.a needs after it (examples/embed, and the
# Libs line of the ember.pc that `make install` writes; libember.a is
# static, so Lua and the rest go in Libs, not Libs.private).
EMBED_LIBS := -l$(LUA) $(BLAS_LIBS) -lpng -ljpeg -lz -lm -fopenmp
EMBER_VERSION := $(shell sed -n 's/^\#define EMBER_VERSION "\(.*\)"/\1/p' core/include/ember.h)

CORE_SRC := $(sort $(wildcard core/*.c core/ops/*.c core/cpu/*.c))
BIND_SRC := bindings/lua_tensor.c bindings/lua_ops.c bindings/lua_module.c \
            bindings/lua_autograd.c bindings/lua_nn.c bindings/lua_optim.c \
            bindings/lua_data.c bindings/lua_io.c bindings/lua_cuda.c \
            bindings/lua_dist.c
LUA_SRC  := $(sort $(shell find lua -name '*.lua'))
GEN_SRC  := $(BUILD)/gen/ember_lua_modules.c
DOC_SRC  := $(sort $(wildcard docs/*.md))
GEN_DOCS := $(BUILD)/gen/ember_docs.c

CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
BIND_OBJ := $(BIND_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/ember_lua_modules.o \
            $(BUILD)/obj/gen/ember_docs.o
MAIN_OBJ := $(BUILD)/obj/bindings/ember_main.o
HEADERS  := $(wildcard core/*.h core/ops/*.h core/include/*.h core/cpu/*.h bindings/*.h)

.PHONY: print-nvcc all run test deps asan leakcheck tsan fuzz fuzz-files bench embed install clean rock rock-install

# The CUDA backend: a plugin built whenever nvcc is found (CI too, so a
# compile break fails CI although CI has no GPU), loaded at run time.
NVCC     ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA_HOME = $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVFLAGS  ?= -O2 -std=c++17 $(CUDA_ARCH) -Xcompiler -fPIC,-Wall -Icore/include
CU_SRC   := $(sort $(wildcard core/cuda/*.cu))
CU_OBJ   := $(CU_SRC:%.cu=$(BUILD)/obj/%.o)
CUDA_LIB := $(if $(NVCC),$(BUILD)/libember_cuda.so)

# The MPI plugin for data-parallel training (core/mpi/, core/dist.c): built
# whenever mpicc is found, loaded by a process that mpirun started.
MPICC    ?= $(shell command -v mpicc 2>/dev/null)
MPI_LIB  := $(if $(MPICC),$(BUILD)/libember_mpi.so)

all: ember $(BUILD)/ember/core.so $(BUILD)/libember.a $(CUDA_LIB) $(MPI_LIB)

# {==================================================================
# Build
# ===================================================================

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(XCFLAGS) -c $< -o $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c bindings/ember_lua_modules.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ibindings $(XCFLAGS) -c $< -o $@

# The Lua library, compiled into the binaries (see tools/embed_lua.lua).
$(GEN_SRC): $(LUA_SRC) tools/embed_lua.lua
	@mkdir -p $(dir $@)
	$(LUA) tools/embed_lua.lua $@ lua $(LUA_SRC)

# docs/*.md, compiled in for ember.help (lua/ember/help.lua): the one text.
$(GEN_DOCS): $(DOC_SRC) tools/embed_lua.lua
	@mkdir -p $(dir $@)
	$(LUA) tools/embed_lua.lua --docs $@ docs $(DOC_SRC)

# The executable: script runner and REPL.
ember: $(MAIN_OBJ) $(BIND_OBJ) $(CORE_OBJ)
	$(CC) -o $@ $^ -l$(LUA) -ledit $(LIBS)

# `require "ember.core"` from the stock interpreter (package.cpath).  Never
# unloaded (-z nodelete): lua_close would otherwise unmap OpenBLAS and
# libgomp under their still-running worker threads.
$(BUILD)/ember/core.so: $(BIND_OBJ) $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-z,nodelete -o $@ $^ $(LIBS)

# For C hosts: the core, the bindings and the Lua library in one archive.
$(BUILD)/libember.a: $(BIND_OBJ) $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/obj/core/cuda/%.o: core/cuda/%.cu core/cuda/cuda_internal.h core/cuda/index_math.h core/cuda/scan_math.h core/cuda/devcache.h core/philox.h core/sort_keys.h core/device.h core/backend.h core/include/ember.h
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@

# The caching allocator of the device plugins (core/cuda/devcache.c):
# portable C, compiled into libember_cuda.so and libember_fakecuda.so,
# never into the core.
DEVCACHE_OBJ := $(BUILD)/obj/core/cuda/devcache.o
$(DEVCACHE_OBJ): core/cuda/devcache.c core/cuda/devcache.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 -fPIC $(WARN) $(CFLAGS) $(SAN) -c $< -o $@

# The CUDA plugin's copy, without the sanitizers: nvcc links none of
# their runtimes (its kernels' host code is not instrumented either), so
# an instrumented object would leave the plugin unloadable in make asan.
DEVCACHE_CU_OBJ := $(BUILD)/obj/core/cuda/devcache-plain.o
$(DEVCACHE_CU_OBJ): core/cuda/devcache.c core/cuda/devcache.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 -fPIC $(WARN) $(CFLAGS) -c $< -o $@

# Links cudart and cuBLAS; none of the core's symbols (see core/device.h).
# -Bsymbolic: its calls to its own functions never bind to the core's of
# the same name (ember_cuda_synchronize, ...) in a host that exports them.
$(BUILD)/libember_cuda.so: $(CU_OBJ) $(DEVCACHE_CU_OBJ)
	$(NVCC) -shared -o $@ $^ -lcublas -lcudart -Xlinker -Bsymbolic -Xlinker -rpath,$(CUDA_HOME)/lib64

# The CUDA kernels' index arithmetic (core/cuda/index_math.h) checked on
# the host: built by nvcc, runs without a GPU (spec/core/cuda_index_spec.lua).
$(BUILD)/cuda-index-test: tools/cuda_index_test.cu core/cuda/index_math.h core/include/ember.h
	@mkdir -p $(dir $@)
	$(if $(NVCC),,@echo "cuda-index-test: nvcc not found" >&2; exit 1)
	$(NVCC) -O2 -std=c++17 -Xcompiler -Wall -Icore/include -o $@ tools/cuda_index_test.cu

# The tiled scan of core/cuda/scan.cu emulated on the host against the
# CPU's sequential rule (spec/core/cuda_scan_spec.lua); no GPU needed.
$(BUILD)/cuda-scan-test: tools/cuda_scan_test.cu core/cuda/scan_math.h core/backend.h core/include/ember.h
	@mkdir -p $(dir $@)
	$(if $(NVCC),,@echo "cuda-scan-test: nvcc not found" >&2; exit 1)
	$(NVCC) -O2 -std=c++17 -Xcompiler -Wall -Icore/include -o $@ tools/cuda_scan_test.cu

# The nvcc this Makefile uses (empty when none): for the specs.
print-nvcc:
	@echo "$(NVCC)"

# Links libmpi; none of the core's symbols (see core/dist.h).
$(BUILD)/libember_mpi.so: core/mpi/ember_mpi.c core/dist.h core/device.h core/backend.h core/include/ember.h
	@mkdir -p $(dir $@)
	$(MPICC) $(CPPFLAGS) -std=c11 -fPIC $(WARN) $(CFLAGS) $(SAN) -shared -o $@ $<

# A stand-in CUDA plugin over host memory (tools/fake_cuda.c): the specs
# load it to run every "cuda" path of the core, bindings and library, and
# the GPU specs themselves, on a machine without a GPU.
$(BUILD)/libember_fakecuda.so: tools/fake_cuda.c $(CORE_OBJ) $(DEVCACHE_OBJ) core/device.h core/cuda/devcache.h
	$(CC) $(CPPFLAGS) $(XCFLAGS) -shared -Wl,-Bsymbolic -o $@ tools/fake_cuda.c $(DEVCACHE_OBJ) $(CORE_OBJ) $(LIBS)

# The caching allocator over a simulated raw allocator
# (tools/devcache_test.c): built for `make test`, run by
# spec/bindings/devcache_spec.lua.
$(BUILD)/devcache-test: tools/devcache_test.c $(DEVCACHE_OBJ)
	$(CC) $(CPPFLAGS) -std=c11 $(WARN) $(CFLAGS) $(SAN) -pthread -o $@ tools/devcache_test.c $(DEVCACHE_OBJ)

# The C host example, built into the build folder ($(BUILD)/embed-host).
embed: $(BUILD)/libember.a
	$(MAKE) -C examples/embed LIBEMBER=$(abspath $(BUILD)/libember.a) \
	  OUT=$(abspath $(BUILD))/embed-host LUA_INC=$(LUA_INC) SAN="$(SAN)" \
	  EMBED_LIBS="$(EMBED_LIBS)"

# Independent lua_States on concurrent host threads, each training a seeded
# model, against the same seeds run alone (tools/threads_host.c): built for
# `make test` (spec/bindings/threads_spec.lua runs it) and by `make tsan`.
$(BUILD)/threads-host: tools/threads_host.c $(BUILD)/libember.a
	$(CC) $(CPPFLAGS) -Ibindings -std=c11 $(WARN) $(CFLAGS) $(SAN) -pthread -o $@ \
	  tools/threads_host.c $(BUILD)/libember.a -l$(LUA) $(LIBS)

# The CUDA toolkit is on the development machine; the backend is a later
# issue, so nothing CUDA is built yet.

# }==================================================================

# {==================================================================
# Run, test, install
# ===================================================================

deps:
	@sh tools/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	./ember examples/fashion_mnist_cnn.lua

test: deps
	@$(MAKE) --no-print-directory all embed $(BUILD)/threads-host $(BUILD)/devcache-test $(BUILD)/libember_fakecuda.so
	$(BUSTED)

# Under the sanitizers allocator_may_return_null=1: an allocation past
# memory is Ember's "out of memory" error (a spec asks for one), not an abort.
asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="-O1 -g" SAN="$(ASAN_FLAGS)" \
	  build-asan/ember/core.so build-asan/libember.a ember-asan build-asan/libember_fakecuda.so \
	  $(if $(NVCC),build-asan/libember_cuda.so) $(if $(MPICC),build-asan/libember_mpi.so)
	ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=8:allocator_may_return_null=1 LD_PRELOAD=$$($(CC) -print-file-name=libasan.so) \
	  EMBER_BUILD=build-asan EMBER_BIN=./ember-asan EMBER_SAN="$(ASAN_FLAGS)" $(BUSTED)

ember-asan: $(MAIN_OBJ) $(BIND_OBJ) $(CORE_OBJ)
	$(CC) -o $@ $^ -l$(LUA) -ledit $(LIBS)

# LeakSanitizer over a slice of the specs (docs/hardening.md, "Leaks"): the
# build-asan build, leak detection on in busted's process and in every
# child it starts, each process's report in build-asan/lsan/report.EXE.PID
# (exitcode=0: a report never fails a spec, it fails this target).
# tools/lsan.supp silences the compiler and tools the specs run; a report
# that still comes from a program other than lua5.4 or ember-asan and has
# no frame of Ember (core/, bindings/, tools/*.c, libember) is set aside
# as that program's, and listed.  Any other report fails the target.
LEAK_SPECS ?= spec/core spec/autograd spec/nn spec/optim spec/io spec/data spec/train
leakcheck: deps
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="-O1 -g" SAN="$(ASAN_FLAGS)" \
	  build-asan/ember/core.so build-asan/libember.a ember-asan build-asan/libember_fakecuda.so
	@rm -rf build-asan/lsan && mkdir -p build-asan/lsan
	ASAN_OPTIONS=detect_leaks=1:exitcode=0:quarantine_size_mb=8:allocator_may_return_null=1:log_exe_name=1:log_path=$(CURDIR)/build-asan/lsan/report \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp:print_suppressions=0 \
	  LD_PRELOAD=$$($(CC) -print-file-name=libasan.so) \
	  EMBER_BUILD=build-asan EMBER_BIN=./ember-asan EMBER_SAN="$(ASAN_FLAGS)" $(BUSTED) $(LEAK_SPECS); \
	  echo $$? > build-asan/lsan/busted.rc
	@bad=0; for f in build-asan/lsan/report.*; do [ -e "$$f" ] || continue; \
	  case "$$f" in *.lua5.4.*|*.ember-asan.*) ours=1;; *) ours=0;; esac; \
	  grep -Eq '(core|bindings|tools)/[a-z_/]+\.c:|libember|ember-asan' "$$f" && ours=1; \
	  if [ $$ours = 1 ]; then cat "$$f"; bad=$$((bad + 1)); \
	  else echo "leakcheck: set aside $$f (a tool's, no frame of Ember)"; fi; \
	  done; [ $$bad = 0 ] || { echo "leakcheck: FAILED, $$bad report(s) from Ember above"; exit 1; }
	@test "$$(cat build-asan/lsan/busted.rc)" = 0 || { echo "leakcheck: specs failed"; exit 1; }
	@echo "leakcheck: no leaks from Ember ($(LEAK_SPECS))"

# ThreadSanitizer (docs/hardening.md, "Threads"): tools/threads_host.c, its
# own build in build-tsan, rounds of 2 and 4 threads each with its own
# lua_State.  The host runs one kernel thread per state, so libgomp (not
# instrumented: TSan cannot see its futex barriers and would report its
# thread pool's hand-offs) never starts a team; tools/tsan.supp names the
# uninstrumented libraries a report may still come from.  Any other
# report fails the target (halt_on_error, exitcode 66).  No SIMD clones
# (EMBER_NO_SIMD_CLONES): their ifunc resolvers run before TSan's runtime
# is up, and instrumented, they crash the program at load.
tsan: deps
	@$(MAKE) --no-print-directory BUILD=build-tsan CFLAGS="-O1 -g -DEMBER_NO_SIMD_CLONES" SAN="$(TSAN_FLAGS)" \
	  build-tsan/threads-host
	TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$(CURDIR)/tools/tsan.supp" \
	  build-tsan/threads-host 2 4

# The Lua-surface fuzzer (tools/fuzz/lua_fuzz.lua, docs/hardening.md) on the
# ASan+UBSan build: batches of random hostile calls, each in a child
# process, for FUZZ_SECONDS (120 unless given) from FUZZ_SEED (the clock
# unless given).  Fails on any crash, hang or sanitizer report, printing
# the seed and the call.
fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="-O1 -g" SAN="$(ASAN_FLAGS)" \
	  build-asan/ember/core.so ember-asan build-asan/libember_fakecuda.so
	ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 EMBER_BUILD=build-asan EMBER_SAN="$(ASAN_FLAGS)" \
	  ./ember-asan tools/fuzz/lua_fuzz.lua --bin ./ember-asan \
	  --seconds $(if $(filter command line environment,$(origin FUZZ_SECONDS)),$(FUZZ_SECONDS),120) \
	  $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

# libFuzzer over the file readers (tools/fuzz/fuzz_*.c, docs/hardening.md):
# each harness runs FUZZ_SECONDS from the hostile corpus and fails on any
# crash, sanitizer report, leak, or allocation over FUZZ_MALLOC_MB.
FUZZ_SECONDS  ?= 60
FUZZ_MALLOC_MB ?= 64
FUZZ_CC       ?= clang
FUZZ_FLAGS    := -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=undefined -Wno-pass-failed
FUZZ_OBJ      := $(CORE_SRC:%.c=build/fuzz/obj/%.o)
FUZZERS       := build/fuzz/fuzz_safetensors build/fuzz/fuzz_idx \
                 build/fuzz/fuzz_bpe build/fuzz/fuzz_image

build/fuzz/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) -std=c11 -fopenmp $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(FUZZERS): build/fuzz/%: tools/fuzz/%.c tools/fuzz/fuzz_file.h $(FUZZ_OBJ)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_OBJ) -lopenblas -lpng -ljpeg -lz -lm -fopenmp

fuzz-files:
	@sh tools/deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZERS)
	@for f in $(notdir $(FUZZERS)); do mkdir -p build/fuzz/corpus/$$f && \
	  echo "== $$f: $(FUZZ_SECONDS) s" && \
	  build/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -malloc_limit_mb=$(FUZZ_MALLOC_MB) \
	    -print_final_stats=1 -artifact_prefix=build/fuzz/$$f- \
	    build/fuzz/corpus/$$f spec/fixtures/hostile \
	    2>build/fuzz/$$f.log || { tail -n 60 build/fuzz/$$f.log; exit 1; }; \
	  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' build/fuzz/$$f.log; \
	done

bench: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory -C bench LIBEMBER=$(abspath $(BUILD)/libember.a) BLAS_LIBS="$(BLAS_LIBS)"
	@sh bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	  $(DESTDIR)$(PREFIX)/include/ember \
	  $(DESTDIR)$(PREFIX)/lib/lua/5.4/ember $(DESTDIR)$(PREFIX)/share/lua/5.4/ember
	install -m 755 ember $(DESTDIR)$(PREFIX)/bin/ember
	$(if $(MPI_LIB),install -m 755 $(MPI_LIB) $(DESTDIR)$(PREFIX)/lib/libember_mpi.so)
	install -m 644 $(BUILD)/libember.a $(DESTDIR)$(PREFIX)/lib/libember.a
	install -m 644 core/include/ember.h $(DESTDIR)$(PREFIX)/include/ember/ember.h
	install -m 644 bindings/ember_lua.h $(DESTDIR)$(PREFIX)/include/ember/ember_lua.h
	install -m 755 $(BUILD)/ember/core.so $(DESTDIR)$(PREFIX)/lib/lua/5.4/ember/core.so
	$(if $(CUDA_LIB),install -m 755 $(CUDA_LIB) $(DESTDIR)$(PREFIX)/lib/libember_cuda.so)
	cd lua && for f in $$(find ember -name '*.lua'); do \
	  install -D -m 644 $$f $(DESTDIR)$(PREFIX)/share/lua/5.4/$$f; done
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	  'Name: ember' 'Description: Ember, a machine-learning engine in C scripted from Lua 5.4' \
	  'Version: $(EMBER_VERSION)' 'Cflags: -I$${includedir}/ember -I$(LUA_INC)' \
	  'Libs: -L$${libdir} -lember $(EMBED_LIBS)' > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ember.pc

# The targets `luarocks make` calls (rockspec/ember-scm-1.rockspec): the
# C module, and the CUDA and MPI plugins where nvcc and mpicc are found, as
# `all` and `install` do (make's dependencies reuse plugins already built).
# The plugins go next to core.so, the first place core/plugin.c looks.
rock: $(BUILD)/ember/core.so $(CUDA_LIB) $(MPI_LIB)
	$(if $(CUDA_LIB),,@echo "rock: no nvcc found (PATH, /usr/local/cuda/bin): the CUDA plugin is not built")
	$(if $(MPI_LIB),,@echo "rock: no mpicc found (PATH): the MPI plugin is not built")

rock-install:
	install -d $(INST_LIBDIR)/ember $(INST_LUADIR)/ember
	install -m 755 $(BUILD)/ember/core.so $(INST_LIBDIR)/ember/core.so
	$(if $(CUDA_LIB),install -m 755 $(CUDA_LIB) $(INST_LIBDIR)/ember/libember_cuda.so)
	$(if $(MPI_LIB),install -m 755 $(MPI_LIB) $(INST_LIBDIR)/ember/libember_mpi.so)
	cd lua && for f in $$(find ember -name '*.lua'); do \
	  install -D -m 644 $$f $(INST_LUADIR)/$$f; done

clean:
	rm -rf build build-asan build-tsan ember ember-asan
	-$(MAKE) -C examples/embed clean
	-$(MAKE) -C bench clean

# }==================================================================
