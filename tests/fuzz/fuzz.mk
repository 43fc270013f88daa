# tests/fuzz/fuzz.mk - libFuzzer targets (clang), one per network-facing parser.
#
# Each tests/fuzz/fuzz_X.c becomes build/fuzz/fuzz_X, linked with lib/ built
# with the same sanitizers and coverage.  fuzz_api_request also gets the
# ee-api front end (fcgi/ without main.c) and libfcgi; fuzz_agent_msg gets
# ee-agent's request checks and header parser (agent/backend.c, outbox.c).  tests/run runs each
# target over tests/fuzz/corpus/X/ (X without the fuzz_ prefix).
FUZZ_BUILD := build/fuzz
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN   := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRC))
FUZZ_LIB_SRC := $(wildcard lib/*.c)
FUZZ_API_SRC := $(filter-out fcgi/main.c,$(wildcard fcgi/*.c))
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_LIB_SRC))
FUZZ_GEN_OBJ := $(FUZZ_BUILD)/obj/gen/sql_embedded.o
FUZZ_API_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_API_SRC))
FUZZ_AGENT_SRC := agent/backend.c agent/outbox.c
FUZZ_AGENT_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_AGENT_SRC))
FUZZ_HEADERS := $(wildcard lib/*.h fcgi/*.h agent/*.h)
# What the targets share (fuzz_support.h): only the targets depend on it.
FUZZ_TARGET_HEADERS := $(wildcard tests/fuzz/*.h)
FUZZ_SANITIZE := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -g -O1 -fno-omit-frame-pointer $(WARN) \
	-Ilib -Ifcgi -Iagent -I$(FUZZ_BUILD)/gen $(FUZZ_SANITIZE)

.PHONY: fuzz-build
fuzz-build: $(FUZZ_BIN)

$(FUZZ_BUILD)/gen/sql_embedded.c: $(BUILD)/gen/sql_embedded.c
	@mkdir -p $(dir $@)
	cp $< $@

# Project code is compiled once with coverage and sanitizers; libFuzzer's own
# main() only comes in at link time.
$(FUZZ_LIB_OBJ) $(FUZZ_API_OBJ) $(FUZZ_AGENT_OBJ): $(FUZZ_BUILD)/obj/%.o: %.c $(FUZZ_HEADERS)
	@mkdir -p $(dir $@)
	@echo "CC [fuzz] $<"
	@clang $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_GEN_OBJ): $(FUZZ_BUILD)/gen/sql_embedded.c
	@mkdir -p $(dir $@)
	@clang $(FUZZ_CFLAGS) -c $< -o $@

# The whole request path: router, handlers and http.c (for http_response_init
# and http_request_free), which calls into libfcgi.
$(FUZZ_BUILD)/fuzz_api_request: $(FUZZ_API_OBJ)
$(FUZZ_BUILD)/fuzz_api_request: FUZZ_EXTRA_LIBS := -lfcgi

# ee-dns's reading of Cloudflare's answers (deploy/ee-dns/cf_response.c).
FUZZ_DNS_OBJ := $(FUZZ_BUILD)/obj/deploy/ee-dns/cf_response.o
$(FUZZ_DNS_OBJ): $(FUZZ_BUILD)/obj/%.o: %.c $(FUZZ_HEADERS) $(wildcard deploy/ee-dns/*.h)
	@mkdir -p $(dir $@)
	@echo "CC [fuzz] $<"
	@clang $(FUZZ_CFLAGS) -c $< -o $@
$(FUZZ_BUILD)/fuzz_cf_response: $(FUZZ_DNS_OBJ)
$(FUZZ_BUILD)/fuzz_cf_response: FUZZ_CFLAGS += -Ideploy/ee-dns
$(FUZZ_BUILD)/fuzz_agent_msg: $(FUZZ_AGENT_OBJ)
$(FUZZ_BUILD)/fuzz_agent_msg: FUZZ_EXTRA_LIBS := -lwebsockets -lpthread

$(FUZZ_BIN): $(FUZZ_BUILD)/%: tests/fuzz/%.c $(FUZZ_LIB_OBJ) $(FUZZ_GEN_OBJ) $(FUZZ_HEADERS) \
	$(FUZZ_TARGET_HEADERS)
	@mkdir -p $(dir $@)
	@echo "LD [fuzz] $@"
	@clang $(FUZZ_CFLAGS) -o $@ $< $(filter %.o,$^) $(FUZZ_EXTRA_LIBS) $(LIBS_CORE)
