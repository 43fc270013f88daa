/* error.c - filling struct ee_error; see error.h. */
#include "error.h"

#include <stdio.h>
#include <string.h>

int ee_fail(struct ee_error *err, int status, const char *reason)
{
	if (err) {
		err->status = status;
		snprintf(err->reason, sizeof(err->reason), "%s", reason);
	}
	return -1;
}

int ee_fail_detail(struct ee_error *err, int status, const char *reason,
                   const char *detail)
{
	if (err) {
		err->status = status;
		snprintf(err->reason, sizeof(err->reason), "%s:%s", reason, detail);
	}
	return -1;
}

void ee_error_clear(struct ee_error *err)
{
	if (err) {
		err->status = 0;
		err->reason[0] = '\0';
	}
}
