# tests/fuzz/fuzz.mk - libFuzzer targets (clang), one per network-facing parser.
FUZZ_BUILD := build/fuzz
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN   := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRC))
FUZZ_LIB_SRC := $(filter-out lib/log.c,$(wildcard lib/*.c))
FUZZ_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -g -O1 -Wall -Wextra -Werror -Ilib -Ifcgi \
	-I$(FUZZ_BUILD)/gen -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

.PHONY: fuzz-build
fuzz-build: $(FUZZ_BIN)

$(FUZZ_BUILD)/gen/sql_embedded.c: $(BUILD)/gen/sql_embedded.c
	@mkdir -p $(dir $@)
	cp $< $@

$(FUZZ_BUILD)/%: tests/fuzz/%.c $(FUZZ_LIB_SRC) lib/log.c $(FUZZ_BUILD)/gen/sql_embedded.c $(wildcard lib/*.h fcgi/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_SRC) lib/log.c $(FUZZ_BUILD)/gen/sql_embedded.c $(LIBS_CORE)
