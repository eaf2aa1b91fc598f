/* Text and names for FSTLS_E* codes, generated from FSTLS_ERRNO_MAP. */
#include "fstls.h"

/* Returns static text for an FSTLS_E* code, or "unknown error". */
const char *fstls_strerror(int err) {
  switch (err) {
#define FSTLS_STRERROR_CASE(name, val, msg)                                    \
  case FSTLS_##name:                                                           \
    return msg;
    FSTLS_ERRNO_MAP(FSTLS_STRERROR_CASE)
#undef FSTLS_STRERROR_CASE
  default:
    return "unknown error";
  }
}

/* Returns the symbolic name of an FSTLS_E* code, or "FSTLS_UNKNOWN". */
const char *fstls_err_name(int err) {
  switch (err) {
#define FSTLS_ERR_NAME_CASE(name, val, msg)                                    \
  case FSTLS_##name:                                                           \
    return "FSTLS_" #name;
    FSTLS_ERRNO_MAP(FSTLS_ERR_NAME_CASE)
#undef FSTLS_ERR_NAME_CASE
  default:
    return "FSTLS_UNKNOWN";
  }
}
