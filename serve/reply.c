/* JSON replies and errors in OpenAI's shape (docs/SERVING.md, "Errors"). */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "serve.h"

_Thread_local unsigned reply_status;

int reply_text(struct MHD_Connection *conn, unsigned status, const char *type, const char *text)
{
	reply_status = status;
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	int rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

int reply_json(struct MHD_Connection *conn, unsigned status, json_t *doc)
{
	reply_status = status;
	char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	if (!text)
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json",
				  "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":500}}");
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	int rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

/* The error types llama.cpp's server gives each status (vLLM puts the
 * status in "code", as here). */
static const char *error_type(unsigned status)
{
	switch (status) {
	case 400: case 413: case 422: return "invalid_request_error";
	case 401: return "authentication_error";
	case 404: return "not_found_error";
	case 503: return "unavailable_error";
	default: return status >= 500 ? "server_error" : "invalid_request_error";
	}
}

json_t *error_object(unsigned status, const char *message)
{
	return json_pack("{s:{s:s, s:s, s:n, s:i}}", "error", "message", message, "type", error_type(status), "param",
			 "code", (int)status);
}

int reply_error(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return reply_json(conn, status, error_object(status, msg));
}

void request_id(char *out, size_t cap, const char *prefix)
{
	uint64_t r[2] = {0, 0};
	if (getrandom(r, sizeof(r), 0) != sizeof(r))
		r[0] = (uint64_t)serve_now_ns();
	snprintf(out, cap, "%s-%016llx%016llx", prefix, (unsigned long long)r[0], (unsigned long long)r[1]);
}
