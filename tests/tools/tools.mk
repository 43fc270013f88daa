# tests/tools/tools.mk - development tools built from test-only code.
#
# ee-dcapgen writes a TDX quote signed by a fake DCAP hierarchy
# (tests/support/dcapgen.c), its collateral and the root to pin, so a
# machine without TDX can drive the whole attestation path on a development
# network.  ee-dcap-fixture writes the fuzz targets' DCAP fixture
# (tests/fuzz/dcap_fixture.h) and its seeds from the same generator;
# `make dcap-fixture` regenerates them.  Never part of a release: `make
# tools` builds them into $(BUILD)/tools/.  They need only lib/util.c (and
# lib/base64.c) of the library.
TOOLS_SRC := $(wildcard tests/tools/*.c)
TOOLS_BIN := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOLS_SRC))

.PHONY: tools dcap-fixture
tools: $(TOOLS_BIN)

$(BUILD)/tools/ee-dcapgen: tests/tools/ee-dcapgen.c $(BUILD)/obj/tests/support/dcapgen.o \
	$(BUILD)/obj/lib/util.o $(BUILD)/obj/lib/base64.o
	@mkdir -p $(dir $@)
	@echo "LD $@"
	@$(CC) $(CFLAGS_ALL) -Itests/support $(LDFLAGS_ALL) -o $@ $^ -ljson-c -lcrypto

$(BUILD)/tools/ee-dcap-fixture: tests/tools/ee-dcap-fixture.c \
	$(BUILD)/obj/tests/support/dcapgen.o $(BUILD)/obj/lib/util.o
	@mkdir -p $(dir $@)
	@echo "LD $@"
	@$(CC) $(CFLAGS_ALL) -Itests/support $(LDFLAGS_ALL) -o $@ $^ -ljson-c -lcrypto

# Rewrites tests/fuzz/dcap_fixture.h and the seeds of tests/fuzz/corpus/quote
# and corpus/dcap_collateral together (commit them together).
dcap-fixture: $(BUILD)/tools/ee-dcap-fixture
	$(BUILD)/tools/ee-dcap-fixture tests/fuzz

# `make run` starts a demo agent with a kit from ee-dcapgen, and its test
# (test_run_local) runs it from every build: the tools are part of `all`.
all: $(TOOLS_BIN)
