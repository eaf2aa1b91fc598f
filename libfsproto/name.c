/* UTF-8 and file name validation (protocol.md section 1). */
#include "fsp_int.h"

/* Strict UTF-8 after Unicode 15, table 3-7 ("well-formed UTF-8 byte
 * sequences"). The second byte's range depends on the lead byte; that is what
 * rules out overlong forms (C0, C1, E0 80..9F, F0 80..8F), surrogates
 * (ED A0..BF) and code points above U+10FFFF (F4 90.., F5..FF). */
int fsp_utf8_check(const void *buf, size_t len) {
  const uint8_t *p = buf;
  size_t i = 0;

  if (len > 0 && p == NULL)
    return FSP_EUTF8;
  while (i < len) {
    uint8_t c = p[i];
    uint8_t lo = 0x80, hi = 0xbf;
    size_t n;

    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0)
        lo = 0xa0;
      else if (c == 0xed)
        hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0)
        lo = 0x90;
      else if (c == 0xf4)
        hi = 0x8f;
    } else {
      return FSP_EUTF8; /* continuation byte, C0/C1 or F5..FF as a lead */
    }
    /* Compare against what is left, so a truncated sequence at the end of
     * the buffer is an error rather than a read past it. */
    if (len - i - 1 < n)
      return FSP_EUTF8;
    if (p[i + 1] < lo || p[i + 1] > hi)
      return FSP_EUTF8;
    for (size_t k = 2; k <= n; k++)
      if ((p[i + k] & 0xc0) != 0x80)
        return FSP_EUTF8;
    i += n + 1;
  }
  return 0;
}

/* A name is 1..FSP_NAME_MAX bytes of UTF-8 with no '/', NUL, control byte
 * (0x01-0x1f, 0x7f) and no leading '.', which also rules out "." and "..".
 * Multi-byte UTF-8 sequences never contain bytes below 0x80, so checking the
 * ASCII bytes one by one is enough. */
int fsp_name_check(const void *name, size_t len) {
  const uint8_t *p = name;

  if (len == 0 || len > FSP_NAME_MAX || p == NULL)
    return FSP_EBADNAME;
  if (p[0] == '.')
    return FSP_EBADNAME;
  for (size_t i = 0; i < len; i++)
    if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '/')
      return FSP_EBADNAME;
  if (fsp_utf8_check(p, len) != 0)
    return FSP_EBADNAME;
  return 0;
}
