/* A program's stdout as one JSON document (json_document.h). */
#include "json_document.h"

json_t *json_document(const char *out)
{
	json_error_t err;
	json_t *doc = json_loads(out, 0, &err);
	CHECK(doc, "stdout is not one JSON document: %s (line %d)\n%s", err.text, err.line, out);
	return doc;
}
