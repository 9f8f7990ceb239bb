/* The HTTP side of shmrt bench serve: streaming completions through
 * libcurl's multi interface (one thread drives every stream, as a load
 * generator should, so that the client costs little beside the server),
 * and a thousand idle connections. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve.h"

int serve_result_add_ttft(struct serve_result *r, double s)
{
	if (r->n_ttft == r->cap_ttft) {
		size_t cap = r->cap_ttft ? 2 * r->cap_ttft : 1024;
		double *t = realloc(r->ttft, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		r->ttft = t;
		r->cap_ttft = cap;
	}
	r->ttft[r->n_ttft++] = s;
	return 0;
}

void serve_result_free(struct serve_result *r)
{
	free(r->ttft);
	r->ttft = NULL;
	r->n_ttft = r->cap_ttft = 0;
}

struct stream {
	CURL *h;
	char line[8192];
	size_t len;
	double t_start, t_first;
	uint64_t tokens;
	int done, bad;
	struct serve_result *res;
};

/* One `data: ...` line: a chunk (its first marks the first token), the
 * usage chunk (the tokens), or [DONE]. */
static void on_event(struct stream *s, const char *data)
{
	if (!strcmp(data, "[DONE]")) {
		s->done = 1;
		return;
	}
	json_t *doc = json_loads(data, 0, NULL);
	if (!doc || json_object_get(doc, "error")) {
		s->bad = 1;
	} else {
		json_t *usage = json_object_get(doc, "usage");
		if (json_is_object(usage))
			s->tokens = (uint64_t)json_integer_value(json_object_get(usage, "completion_tokens"));
		else if (s->t_first == 0)
			s->t_first = serve_now_s();
	}
	json_decref(doc);
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct stream *s = arg;
	size_t total = size * n;
	for (size_t i = 0; i < total; i++) {
		if (p[i] == '\n') {
			s->line[s->len] = '\0';
			if (!strncmp(s->line, "data: ", 6))
				on_event(s, s->line + 6);
			s->len = 0;
		} else if (s->len + 1 < sizeof(s->line)) {
			s->line[s->len++] = p[i];
		} else {
			s->bad = 1;
		}
	}
	return total;
}

static void start(CURLM *m, struct stream *s)
{
	s->len = 0;
	s->t_first = 0;
	s->tokens = 0;
	s->done = s->bad = 0;
	s->t_start = serve_now_s();
	curl_multi_add_handle(m, s->h);
}

static void finish(struct stream *s, CURLcode code)
{
	long status = 0;
	curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
	s->res->requests++;
	if (code != CURLE_OK || status != 200 || !s->done || s->bad || !s->t_first) {
		s->res->errors++;
		return;
	}
	s->res->tokens += s->tokens;
	serve_result_add_ttft(s->res, s->t_first - s->t_start);
}

int serve_http_load(const char *url, const struct serve_load *l, struct serve_result *out)
{
	char body[1024];
	snprintf(body, sizeof(body),
		 "{\"prompt\": \"%s\", \"max_tokens\": %d, \"temperature\": 0, \"ignore_eos\": true, "
		 "\"stream\": true, \"stream_options\": {\"include_usage\": true}}",
		 l->prompt, l->max_tokens);
	char endpoint[512];
	snprintf(endpoint, sizeof(endpoint), "%s/v1/completions", url);
	CURLM *m = curl_multi_init();
	struct stream *s = calloc((size_t)l->streams, sizeof(*s));
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	if (!m || !s || !hdr)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < l->streams; i++) {
		s[i].res = out;
		s[i].h = curl_easy_init();
		curl_easy_setopt(s[i].h, CURLOPT_URL, endpoint);
		curl_easy_setopt(s[i].h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(s[i].h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(s[i].h, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(s[i].h, CURLOPT_WRITEDATA, &s[i]);
		curl_easy_setopt(s[i].h, CURLOPT_PRIVATE, &s[i]);
	}
	double t0 = serve_now_s(), deadline = t0 + l->seconds, last_end = t0;
	for (int i = 0; i < l->streams; i++)
		start(m, &s[i]);
	int running = l->streams;
	while (running > 0) {
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct stream *st;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&st);
			CURLcode code = msg->data.result;
			curl_multi_remove_handle(m, st->h);
			finish(st, code);
			last_end = serve_now_s();
			if (last_end < deadline) {
				start(m, st);
				running++;
			}
		}
		if (running > 0)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	out->seconds = last_end - t0;
	for (int i = 0; i < l->streams; i++)
		curl_easy_cleanup(s[i].h);
	curl_slist_free_all(hdr);
	curl_multi_cleanup(m);
	free(s);
	return 0;
}

int serve_idle_open(int port, int n, int **fds)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
	int *fd = malloc((size_t)n * sizeof(*fd)), opened = 0;
	if (!fd)
		return -ENOMEM;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	for (; opened < n; opened++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0)
			break;
		if (connect(s, (struct sockaddr *)&a, sizeof(a))) {
			close(s);
			break;
		}
		struct timeval tv = {10, 0};
		setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		fd[opened] = s;
	}
	*fds = fd;
	return opened;
}

int serve_idle_answer(int *fds, int n)
{
	static const char req[] = "GET /live HTTP/1.1\r\nHost: bench\r\n\r\n";
	int answered = 0;
	for (int i = 0; i < n; i++) {
		char buf[64];
		if (send(fds[i], req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)sizeof(req) - 1 &&
		    recv(fds[i], buf, sizeof(buf), 0) >= 12 && !memcmp(buf, "HTTP/1.1 200", 12))
			answered++;
		close(fds[i]);
	}
	free(fds);
	return answered;
}
