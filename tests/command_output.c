/* Running a command from a test program (command_output.h). */
#include "command_output.h"

char *command_output(const char *cmd, int *status)
{
	FILE *p = popen(cmd, "r");
	CHECK(p, "popen(%s)", cmd);
	size_t len = 0, cap = 1 << 16;
	char *out = malloc(cap);
	CHECK(out, "out of memory");
	for (size_t n; (n = fread(out + len, 1, cap - len - 1, p)) > 0;) {
		len += n;
		if (cap - len < 4096) {
			out = realloc(out, cap *= 2);
			CHECK(out, "out of memory");
		}
	}
	out[len] = 0;
	*status = pclose(p);
	return out;
}
