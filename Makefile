# pdqmatch - build, test, benchmark and demo from one Makefile.
#
#   make            install missing Debian packages, then build build/pdqmatch
#   make test       ... and run the C unit tests and the end-to-end tests
#   make test SAN=1 the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench      print our speed beside the peers'
#   make demo       the whole set-up of a fresh machine, then the service
#   make fuzz       run every fuzz target (FUZZ_SECONDS each, default 60)
#   make soak       a warm-up then 10 minutes of mixed load on the service, then the HTTP fuzz
#                   corpus replayed 20 times, watching RSS (not in CI)
#
# Every target that builds runs `deps` first; the build itself happens in a
# sub-make so that pkg-config is asked for flags only once the packages are
# there.

SAN ?= 0
ifeq ($(SAN),1)
BUILD := build-san
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD := build
SAN_FLAGS :=
endif

PYTHON := /usr/bin/python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# What building and testing need, as Debian packages.
DEB_PACKAGES := gcc make pkg-config \
	libvips-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev \
	liblmdb-dev libmicrohttpd-dev libjansson-dev libcmocka-dev libnats-dev nats-server \
	libcurl4-openssl-dev libexpat1-dev libjpeg62-turbo-dev \
	python3 python3-pytest python3-requests ffmpeg curl openssl \
	chromium chromium-driver python3-selenium
# (chromium, chromium-driver and python3-selenium: the web console's tests
# drive a headless browser, tests/e2e/test_console.py.)
# What `make bench` adds: public timing tools, the libvips command line, and
# for the index table GNU time, numpy and FAISS.
BENCH_PACKAGES := hyperfine libvips-tools time python3-numpy python3-faiss wrk \
	g++ cmake imagemagick libavdevice-dev libavfilter-dev
# A checkout of facebook/ThreatExchange: `make bench REFERENCE_SRC=DIR` builds
# Meta's reference tools from it (bench/build_reference.sh) to time beside
# pdqmatch; without it the start-up table quotes bench/reference-timing.txt
# unless they were built before.
REFERENCE_SRC ?=
# What `make fuzz` adds: clang with libFuzzer.
FUZZ_PACKAGES := clang libfuzzer-14-dev
# Corpus sizes of the index table (bench/bench_index.py --sizes).
BENCH_SIZES ?= 1000000,10000000

.SECONDARY:

.PHONY: all deps bench-deps fuzz-deps build test test-run unit e2e bench bench-run demo \
	fuzz fuzz-build fuzz-run soak soak-run clean

all: deps
	@$(MAKE) --no-print-directory build

# Install whatever of $(1) is missing: `apt-get update` once, then one
# `apt-get install`; nothing at all when everything is there.
define install_missing
	@missing=$$(for p in $(1); do \
		dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null | grep -qx installed || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		$(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call install_missing,$(DEB_PACKAGES))

bench-deps: deps
	$(call install_missing,$(BENCH_PACKAGES))

fuzz-deps: deps
	$(call install_missing,$(FUZZ_PACKAGES))

# ---------------------------------------------------------------------------
# Build (run through `make build` once the packages are installed).

PKGS := vips libavformat libavcodec libswscale libavutil lmdb libmicrohttpd jansson libnats libcurl expat \
	libjpeg
# What the pdqmatch binary links.  libvips, FFmpeg, libcurl, libmicrohttpd
# and libnats (about 160 shared libraries with theirs) are loaded the first
# time a command needs them (hashing/dynlib.h), by the sonames read here off
# the libraries their headers belong to: MACRO:pkg-config package:library.
LINKED_PKGS := lmdb jansson expat libjpeg
LAZY_LIBS := VIPS:vips:vips AVFORMAT:libavformat:avformat AVCODEC:libavcodec:avcodec \
	SWSCALE:libswscale:swscale AVUTIL:libavutil:avutil CURL:libcurl:curl \
	MHD:libmicrohttpd:microhttpd NATS:libnats:nats
CC := gcc
# -ffp-contract=off: PDQ must round every float product and sum on its own
# to stay bit-exact with the reference (see hashing/pdq.c).
CFLAGS := -std=c11 -Wall -Wextra -Werror -O2 -g -ffp-contract=off -pthread \
	-MMD -MP $(SAN_FLAGS)
LDFLAGS := -pthread $(SAN_FLAGS)

ifneq ($(filter build test-run unit e2e bench-run fuzz-build fuzz-run soak-run,$(MAKECMDGOALS)),)
SONAME_FLAGS := $(shell for l in $(LAZY_LIBS); do \
	m=$${l%%:*}; r=$${l#*:}; p=$${r%%:*}; n=$${r#*:}; \
	s=$$(readelf -d "$$(pkg-config --variable=libdir $$p)/lib$$n.so" | \
		sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p'); \
	echo "'-DPDQM_SONAME_$$m=\"$$s\"'"; done)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS)) $(SONAME_FLAGS)
PKG_LIBS := $(shell pkg-config --libs $(PKGS)) -lm
LINKED_LIBS := $(shell pkg-config --libs $(LINKED_PKGS)) -lm
CMOCKA_LIBS := $(shell pkg-config --libs cmocka)
endif

LIB_SRCS := $(wildcard hashing/*.c index/*.c core/*.c cluster/*.c fetch/*.c exchange/*.c server/*.c)
TOOL_SRCS := $(wildcard tools/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)

# The web console's files go into the binary as they are (.incbin).
LIB_ASM := server/console_assets.S
CONSOLE_FILES := $(wildcard server/console/*)

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(LIB_ASM:%.S=$(BUILD)/obj/%.o)
TOOL_OBJS := $(TOOL_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

LIB := $(BUILD)/libpdqmatch.a
BIN := $(BUILD)/pdqmatch

build: $(BIN) $(UNIT_BINS) $(BUILD)/bench_pdq $(BUILD)/bench_lookup

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	@echo "AS $<"
	@$(CC) $(SAN_FLAGS) -c $< -o $@

$(BUILD)/obj/server/console_assets.o: $(CONSOLE_FILES)

# The PDQ core is the hot loop: let the compiler vectorise it fully.  This
# changes no result: every vectorised loop keeps each sum's own order.
$(BUILD)/obj/hashing/pdq.o: CFLAGS += -O3

# Tests spell their fixtures as positional initializers: the fields a
# struct gains later are zero in them, as intended.
$(BUILD)/obj/tests/%.o: CFLAGS += -Wno-missing-field-initializers

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(TOOL_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJS) $(LIB) $(LINKED_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS) $(CMOCKA_LIBS)

$(BUILD)/bench_pdq: $(BUILD)/obj/bench/bench_pdq.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS)

$(BUILD)/bench_lookup: $(BUILD)/obj/bench/bench_lookup.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------------------
# Tests

# Under the sanitizers: stop at the first report, leaks included.
ifeq ($(SAN),1)
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
endif

test: deps
	@$(MAKE) --no-print-directory test-run

test-run: build
	@$(MAKE) --no-print-directory unit e2e

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do \
		echo "== $$t"; \
		$(SAN_ENV) PDQM_TEST_DATA=tests/data ./$$t; \
	done

e2e: $(BIN)
	$(SAN_ENV) PDQMATCH_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q tests/e2e

# ---------------------------------------------------------------------------
# Fuzzing: libFuzzer targets in tests/fuzz/, the library built again by
# clang with ASan and UBSan.  Each target starts from its seeds in
# tests/fuzz/corpus/TARGET (kept small: minimised with -merge=1) and grows a
# working corpus in build/fuzz/corpus/TARGET; crashes land in
# build/fuzz/crashes/ and stop the run.  Every input that once crashed is
# kept, named, in tests/fuzz/regressions/TARGET and replayed first.

FUZZ_SECONDS ?= 60
FUZZ := build/fuzz
FUZZ_CFLAGS := -std=c11 -Wall -Wextra -Werror -O1 -g -ffp-contract=off -pthread \
	-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -MMD -MP
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TARGETS := $(FUZZ_SRCS:tests/fuzz/%.c=%)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ)/%)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ)/obj/%.o) $(LIB_ASM:%.S=$(FUZZ)/obj/%.o)

FUZZ_JOBS ?= $(shell nproc)

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-build
	@$(MAKE) --no-print-directory -j$(FUZZ_JOBS) --output-sync=target fuzz-run

fuzz-build: $(FUZZ_BINS)

$(FUZZ)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC(fuzz) $<"
	@clang $(FUZZ_CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(FUZZ)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	@echo "AS(fuzz) $<"
	@clang -c $< -o $@

$(FUZZ)/obj/server/console_assets.o: $(CONSOLE_FILES)

$(FUZZ)/libpdqmatch.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ)/fuzz_%: $(FUZZ)/obj/tests/fuzz/fuzz_%.o $(FUZZ)/libpdqmatch.a
	clang -fsanitize=fuzzer,address,undefined -pthread -o $@ $^ $(PKG_LIBS)

-include $(shell find $(FUZZ)/obj -name '*.d' 2>/dev/null)

# -rss_limit_mb: a target may use 2 GiB, no more; -timeout: 25 s an input.
fuzz-run: $(FUZZ_TARGETS:%=fuzz-run-%)

# One target: its regressions replayed, then FUZZ_SECONDS of fuzzing.  The
# targets run FUZZ_JOBS at a time (one a core), each target's output kept
# together.
fuzz-run-%: fuzz-build
	@set -e; t=$*; mkdir -p $(FUZZ)/crashes $(FUZZ)/corpus/$$t tests/fuzz/corpus/$$t; \
	if ls tests/fuzz/regressions/$$t/* >/dev/null 2>&1; then \
		echo "== $$t: regressions"; \
		$(FUZZ)/$$t tests/fuzz/regressions/$$t/* > $(FUZZ)/regress-$$t.log 2>&1 || \
			{ grep -E '^(Running|==[0-9]+==|SUMMARY)' $(FUZZ)/regress-$$t.log; \
			  echo "$$t: a regression input fails"; exit 1; }; \
		grep -c '^Executed' $(FUZZ)/regress-$$t.log | sed 's/$$/ inputs replayed/'; \
	fi; \
	echo "== $$t, $(FUZZ_SECONDS) s"; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(FUZZ)/$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=25 \
		-print_final_stats=1 -artifact_prefix=$(FUZZ)/crashes/$$t- \
		$(FUZZ)/corpus/$$t tests/fuzz/corpus/$$t 2>&1 | \
		grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|INFO: seed corpus|#[0-9]+ +DONE)' || true; \
	test -z "$$(ls $(FUZZ)/crashes/ 2>/dev/null | grep "^$$t-")" || \
		{ echo "$$t: crash, see $(FUZZ)/crashes/"; exit 1; }

# ---------------------------------------------------------------------------
# Benchmarks and demo

bench: bench-deps
	@$(MAKE) --no-print-directory bench-run

bench-run: build
	@if [ -n "$(REFERENCE_SRC)" ]; then bench/build_reference.sh "$(REFERENCE_SRC)"; fi
	@$(PYTHON) bench/bench_startup.py $(BUILD)
	@echo
	@$(PYTHON) bench/bench.py $(BUILD)
	@echo
	@$(PYTHON) bench/bench_video.py $(BUILD)
	@echo
	@$(PYTHON) bench/bench_video_recall.py $(BUILD)
	@echo
	@$(PYTHON) bench/bench_video_lookup.py $(BUILD)
	@echo
	@$(PYTHON) bench/bench_index.py $(BUILD) --sizes $(BENCH_SIZES)
	@echo
	@$(PYTHON) bench/bench_serve.py $(BUILD)
	@echo
	@$(PYTHON) bench/bench_cluster.py $(BUILD)
	@echo
	@$(PYTHON) bench/bench_exchange.py $(BUILD)

soak: deps
	@$(MAKE) --no-print-directory soak-run

soak-run: build
	@$(PYTHON) bench/soak.py $(BUILD)
	@$(PYTHON) tests/fuzz/replay_http.py --bin $(BUILD)/pdqmatch --rounds 20

# The demo store lives in build/ so that `make clean` removes it.
DEMO_DB := $(BUILD)/demo.db
DEMO_LISTEN ?= 127.0.0.1:8080

demo: deps
	@$(MAKE) --no-print-directory build
	@rm -f $(DEMO_DB) $(DEMO_DB)-lock
	@echo "== $(BIN) index --db $(DEMO_DB) --bank samples samples/"
	@$(BIN) index --db $(DEMO_DB) --bank samples samples/
	@echo "== $(BIN) index --db $(DEMO_DB) --bank partner --hash-list samples/partner-hashes.csv"
	@$(BIN) index --db $(DEMO_DB) --bank partner --hash-list samples/partner-hashes.csv
	@echo
	@echo "== The service starts on http://$(DEMO_LISTEN) (Ctrl-C stops it). In another"
	@echo "== terminal, from this folder, try these (or run samples/demo-curl.sh):"
	@echo
	@grep '^run curl' samples/demo-curl.sh | sed -e 's/^run /  /' -e 's|"$$U|"http://$(DEMO_LISTEN)|'
	@echo
	@echo "== Or open the web console: http://$(DEMO_LISTEN)/console/"
	@echo
	@exec $(BIN) serve --db $(DEMO_DB) --create --listen $(DEMO_LISTEN) --console

clean:
	rm -rf build build-san
