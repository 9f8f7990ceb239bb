/* A program's stdout as one JSON document (json_loads rejects anything
 * after it), or a failed check that shows what came instead. */
#ifndef SHMRT_TESTS_JSON_DOCUMENT_H
#define SHMRT_TESTS_JSON_DOCUMENT_H

#include <jansson.h>

#include "check.h"

json_t *json_document(const char *out);

#endif
