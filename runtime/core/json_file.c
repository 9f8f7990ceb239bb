/* Loading JSON documents with jansson (json_file.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fail.h"
#include "json_file.h"

int shmrt_json_parse(const char *text, size_t len, const char *name, json_t **out)
{
	json_error_t e;
	/* Duplicate keys would make "which value wins" a parser accident. */
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
	if (!root)
		return shmrt_fail(EINVAL, "%s: not valid JSON: line %d column %d: %s", name, e.line, e.column, e.text);
	*out = root;
	return 0;
}

static int read_all(int fd, const char *path, char *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return shmrt_fail(errno, "%s: read: %s", path, strerror(errno));
		if (n == 0)
			return shmrt_fail(EIO, "%s: shrank while being read", path);
		done += (size_t)n;
	}
	return 0;
}

int shmrt_json_load_file(const char *path, size_t max_bytes, json_t **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return shmrt_fail(errno, "%s: %s", path, strerror(errno));
	struct stat st;
	int rc = 0;
	char *buf = NULL;
	if (fstat(fd, &st) < 0)
		rc = shmrt_fail(errno, "%s: fstat: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = shmrt_fail(EINVAL, "%s: not a regular file", path);
	else if ((uint64_t)st.st_size > max_bytes)
		rc = shmrt_fail(EFBIG, "%s: %lld bytes, more than the %zu a JSON file here may have", path,
				(long long)st.st_size, max_bytes);
	else if (!(buf = malloc((size_t)st.st_size + 1)))
		rc = shmrt_fail(ENOMEM, "%s: no memory for %lld bytes", path, (long long)st.st_size);
	if (rc == 0)
		rc = read_all(fd, path, buf, (size_t)st.st_size);
	if (rc == 0)
		rc = shmrt_json_parse(buf, (size_t)st.st_size, path, out);
	free(buf);
	close(fd);
	return rc;
}
