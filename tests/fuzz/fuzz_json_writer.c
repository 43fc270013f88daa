/*
 * fuzz_json_writer.c - libFuzzer target for the JSON writer of
 * lib/jsonutil.c, which writes strings that came from the network
 * (account ids, app names, values read back from the database).
 *
 * The input is used twice:
 *   - as one string: json_append_string must write exactly what json-c
 *     writes for it, and json-c must parse that text back to the same
 *     bytes (NUL, control characters and invalid UTF-8 included);
 *   - as a program for the writer: each byte opens or closes an object or
 *     array, or writes a key and a value taken from the following bytes.
 *     Whatever the program, the text is either marked failed (nesting too
 *     deep) or, once every container is closed, exactly one JSON value
 *     that json-c parses to its end; an end without a begin is marked
 *     failed;
 *   - nothing crashes, reads out of bounds or leaks (ASan, LSan).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "jsonutil.h"

#define FUZZ_TARGET "fuzz_json_writer"
#include "fuzz_support.h"

static void check_string(const char *s, size_t len, const uint8_t *data, size_t size)
{
	struct buf b;
	buf_init(&b);
	if (json_append_string(&b, s, len) != 0)
		fuzz_fail("json_append_string failed", data, size);
	struct json_object *ref = json_object_new_string_len(s, (int)len);
	size_t ref_len;
	const char *want = json_text(ref, &ref_len);
	if (b.len != ref_len || memcmp(b.data, want, ref_len) != 0)
		fuzz_fail("json_append_string differs from json-c", data, size);
	json_object_put(ref);

	struct json_tokener *tok = json_tokener_new();
	struct json_object *back = json_tokener_parse_ex(tok, b.data, (int)b.len);
	json_tokener_free(tok);
	if (!back || !json_object_is_type(back, json_type_string) ||
	    (size_t)json_object_get_string_len(back) != len ||
	    memcmp(json_object_get_string(back), s, len) != 0)
		fuzz_fail("the written string does not parse back to its bytes", data, size);
	json_object_put(back);
	buf_free(&b);
}

/* Runs the input as writer operations. */
static void run_program(const char *p, size_t len, const uint8_t *data, size_t size)
{
	struct buf b;
	buf_init(&b);
	struct json_writer w;
	json_writer_init(&w, &b);
	/* What each open container is, to know whether a value needs a key. */
	char open[EE_JSON_MAX_DEPTH + 2];
	int depth = 0;
	bool wrote_top = false;
	for (size_t i = 0; i < len && !b.failed; i++) {
		bool in_object = depth > 0 && open[depth - 1] == '{';
		/* A key: the next few bytes, when inside an object. */
		char key[8] = "";
		if (in_object && i + 1 < len) {
			size_t k = (unsigned char)p[i + 1] % 4;
			for (size_t j = 0; j < k && i + 2 + j < len; j++)
				key[j] = p[i + 2 + j] ? p[i + 2 + j] : 'k';
		}
		const char *k = in_object ? key : NULL;
		if (depth == 0 && wrote_top)
			break; /* one value at the top */
		switch ((unsigned char)p[i] % 8) {
		case 0:
			json_write_object_begin(&w, k);
			if (depth < (int)sizeof(open))
				open[depth] = '{';
			depth++;
			break;
		case 1:
			json_write_array_begin(&w, k);
			if (depth < (int)sizeof(open))
				open[depth] = '[';
			depth++;
			break;
		case 2:
			if (depth == 0)
				goto done; /* an end without a begin: checked apart below */
			if (open[depth - 1] == '{')
				json_write_object_end(&w);
			else
				json_write_array_end(&w);
			depth--;
			break;
		case 3: json_write_string_len(&w, k, p + i, len - i > 5 ? 5 : len - i); break;
		case 4: json_write_int(&w, k, (int64_t)(((uint64_t)(unsigned char)p[i] << 56) - 1u)); break;
		case 5: json_write_bool(&w, k, p[i] & 0x10); break;
		case 6: json_write_null(&w, k); break;
		case 7: json_write_time(&w, k, (int64_t)(unsigned char)p[i] * 86400000 * 365); break;
		}
		if (depth == 0)
			wrote_top = true;
	}
done:
	if (depth > EE_JSON_MAX_DEPTH && !b.failed)
		fuzz_fail("nesting too deep was not marked failed", data, size);
	if (!b.failed && depth == 0 && wrote_top) {
		struct json_tokener *tok = json_tokener_new_ex(EE_JSON_MAX_DEPTH + 1);
		struct json_object *back = json_tokener_parse_ex(tok, b.data, (int)b.len);
		enum json_tokener_error jerr = json_tokener_get_error(tok);
		size_t used = json_tokener_get_parse_end(tok);
		if (!back && jerr == json_tokener_continue) {
			/* A bare number at the top ends only at the end of the input. */
			back = json_tokener_parse_ex(tok, "", 1);
			jerr = json_tokener_get_error(tok);
			used = b.len;
		}
		json_tokener_free(tok);
		if (jerr != json_tokener_success || used != b.len)
			fuzz_fail("the written text is not one JSON value", data, size);
		json_object_put(back);
	}
	buf_free(&b);

	/* An end at the top is refused. */
	buf_init(&b);
	json_writer_init(&w, &b);
	json_write_array_end(&w);
	if (!b.failed)
		fuzz_fail("an end without a begin was not marked failed", data, size);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in;
	if (!fuzz_input_copy(data, size, &in))
		return 0;
	check_string(in, size, data, size);
	run_program(in, size, data, size);
	free(in);
	return 0;
}
