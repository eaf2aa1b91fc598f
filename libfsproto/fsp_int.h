/* Internal helpers shared by the libfsproto modules. Not installed.
 *
 * Every multi-byte field on the wire is big-endian. These helpers assemble
 * and split integers byte by byte, so they work at any alignment and on any
 * host byte order; the codec never casts the input buffer to a struct.
 */
#ifndef FSPROTO_FSP_INT_H
#define FSPROTO_FSP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "fsproto/fsproto.h"

static inline uint16_t fsp__get16(const uint8_t *p) {
  return (uint16_t)((unsigned)p[0] << 8 | (unsigned)p[1]);
}

static inline uint32_t fsp__get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static inline uint64_t fsp__get64(const uint8_t *p) {
  return (uint64_t)fsp__get32(p) << 32 | (uint64_t)fsp__get32(p + 4);
}

static inline void fsp__put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static inline void fsp__put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static inline void fsp__put64(uint8_t *p, uint64_t v) {
  fsp__put32(p, (uint32_t)(v >> 32));
  fsp__put32(p + 4, (uint32_t)v);
}

/* The payload limit a caller really means: 0 stands for FSP_MIN_PAYLOAD (a
 * zero-filled decoder, or a caller that has not seen the peer's HELLO yet),
 * and nothing may exceed FSP_MAX_PAYLOAD whatever the caller asks for. */
static inline uint32_t fsp__payload_limit(uint32_t max_payload) {
  if (max_payload == 0)
    return FSP_MIN_PAYLOAD;
  if (max_payload > FSP_MAX_PAYLOAD)
    return FSP_MAX_PAYLOAD;
  return max_payload;
}

#endif /* FSPROTO_FSP_INT_H */
