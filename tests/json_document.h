/* A program's stdout as one JSON document (json_loads rejects anything
 * after it), or a failed check that shows what came instead. */
#ifndef SHMRT_TESTS_JSON_DOCUMENT_H
#define SHMRT_TESTS_JSON_DOCUMENT_H

#include <jansson.h>

#include "check.h"

static inline json_t *json_document(const char *out)
{
	json_error_t err;
	json_t *doc = json_loads(out, 0, &err);
	CHECK(doc, "stdout is not one JSON document: %s (line %d)\n%s", err.text, err.line, out);
	return doc;
}

#endif
