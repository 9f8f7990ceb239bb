/* An independent UTF-8 check for the tokenizer tests and fuzz targets, kept
 * apart from runtime/tokenizer/utf8.c so that it can judge it. */
#ifndef SHMRT_TESTS_UTF8_CHECK_H
#define SHMRT_TESTS_UTF8_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 3629: no overlongs, surrogates or code points past U+10FFFF. */
static inline bool valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
		if (!len || i + len > n || (len == 2 && c < 0xC2) || (len == 4 && c > 0xF4))
			return false;
		for (size_t k = 1; k < len; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
		if (len == 3 && ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0)))
			return false;
		if (len == 4 && ((c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] >= 0x90)))
			return false;
		i += len;
	}
	return true;
}

#endif
