# tests/tools/tools.mk - development tools built from test-only code.
#
# ee-dcapgen writes a TDX quote signed by a fake DCAP hierarchy
# (tests/support/dcapgen.c), its collateral and the root to pin, so a
# machine without TDX can drive the whole attestation path on a development
# network.  Never part of a release: `make tools` builds it into
# $(BUILD)/tools/.  It needs only lib/util.c of the library.
TOOLS_SRC := $(wildcard tests/tools/*.c)
TOOLS_BIN := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOLS_SRC))

.PHONY: tools
tools: $(TOOLS_BIN)

$(BUILD)/tools/ee-dcapgen: tests/tools/ee-dcapgen.c $(BUILD)/obj/tests/support/dcapgen.o \
	$(BUILD)/obj/lib/util.o $(BUILD)/obj/lib/base64.o
	@mkdir -p $(dir $@)
	@echo "LD $@"
	@$(CC) $(CFLAGS_ALL) -Itests/support $(LDFLAGS_ALL) -o $@ $^ -ljson-c -lcrypto
