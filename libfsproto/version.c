/* The library's own version, as opposed to the wire version in every frame
 * header (FSP_PROTO_VERSION). */
#include "fsp_int.h"

/* Returns FSP_VERSION_HEX of the library that is linked, which may differ from
 * the header a program was compiled against. */
unsigned fsp_version(void) {
  return FSP_VERSION_HEX;
}

/* Returns "MAJOR.MINOR.PATCH" of the linked library. Static storage. */
const char *fsp_version_string(void) {
  return FSP_VERSION_STRING;
}
