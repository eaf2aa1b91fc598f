/* Text for error codes, wire status codes and opcodes.
 *
 * Every table is generated from the X-macro maps in fsproto.h, so adding a
 * code there is enough to make it printable here.
 */
#include "fsp_int.h"

/* Returns static text for an FSP_E* code, or "unknown error". */
const char *fsp_strerror(int err) {
  switch (err) {
#define FSP_STRERROR_CASE(name, val, msg)                                      \
  case FSP_##name:                                                             \
    return msg;
    FSP_ERRNO_MAP(FSP_STRERROR_CASE)
#undef FSP_STRERROR_CASE
  default:
    return "unknown error";
  }
}

/* Returns the symbolic name of an FSP_E* code ("FSP_ETOOBIG"), or
 * "FSP_UNKNOWN". Static storage. */
const char *fsp_err_name(int err) {
  switch (err) {
#define FSP_ERR_NAME_CASE(name, val, msg)                                      \
  case FSP_##name:                                                             \
    return "FSP_" #name;
    FSP_ERRNO_MAP(FSP_ERR_NAME_CASE)
#undef FSP_ERR_NAME_CASE
  default:
    return "FSP_UNKNOWN";
  }
}

/* Returns the default English text of a wire status, or "unknown status".
 * Static storage. */
const char *fsp_status_str(uint16_t status) {
  switch (status) {
#define FSP_STATUS_STR_CASE(name, val, msg)                                    \
  case FSP_ST_##name:                                                          \
    return msg;
    FSP_STATUS_MAP(FSP_STATUS_STR_CASE)
#undef FSP_STATUS_STR_CASE
  default:
    return "unknown status";
  }
}

/* Returns the name of a wire status ("NOT_FOUND"), or "UNKNOWN". */
const char *fsp_status_name(uint16_t status) {
  switch (status) {
#define FSP_STATUS_NAME_CASE(name, val, msg)                                   \
  case FSP_ST_##name:                                                          \
    return #name;
    FSP_STATUS_MAP(FSP_STATUS_NAME_CASE)
#undef FSP_STATUS_NAME_CASE
  default:
    return "UNKNOWN";
  }
}

/* Returns the name of an opcode ("GET"), or NULL for an opcode this version
 * of the library does not know. */
const char *fsp_op_name(uint8_t op) {
  switch (op) {
#define FSP_OP_NAME_CASE(name, val, dir)                                       \
  case FSP_OP_##name:                                                          \
    return #name;
    FSP_OPCODE_MAP(FSP_OP_NAME_CASE)
#undef FSP_OP_NAME_CASE
  default:
    return NULL;
  }
}
