/* Error codes, wire status codes and opcode names (error.c). */
#include <string.h>

#include "helpers.h"

struct code {
  int val;
  const char *name;
  const char *msg;
};

static const struct code errors[] = {
#define E(name, val, msg) {val, "FSP_" #name, msg},
    FSP_ERRNO_MAP(E)
#undef E
};
#define NERRORS (sizeof(errors) / sizeof(errors[0]))

START_TEST(test_error_strerror_every_code) {
  for (size_t i = 0; i < NERRORS; i++) {
    ck_assert_str_eq(fsp_strerror(errors[i].val), errors[i].msg);
    ck_assert_str_eq(fsp_err_name(errors[i].val), errors[i].name);
    ck_assert_str_ne(fsp_strerror(errors[i].val), "unknown error");
  }
}
END_TEST

START_TEST(test_error_strerror_unknown) {
  static const int unknown[] = {0,    1,    -1,        -500,
                                -514, -599, INT32_MIN, INT32_MAX};

  for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
    ck_assert_str_eq(fsp_strerror(unknown[i]), "unknown error");
    ck_assert_str_eq(fsp_err_name(unknown[i]), "FSP_UNKNOWN");
  }
}
END_TEST

/* Codes are negative, distinct, and within -599..-500, away from the
 * errno-based UV_E* values (-1..-133 on Linux). */
START_TEST(test_error_codes_distinct_and_in_range) {
  for (size_t i = 0; i < NERRORS; i++) {
    ck_assert_int_lt(errors[i].val, -500);
    ck_assert_int_ge(errors[i].val, -599);
    for (size_t j = i + 1; j < NERRORS; j++)
      ck_assert_int_ne(errors[i].val, errors[j].val);
  }
  ck_assert_int_eq(FSP_EAGAIN, -501);
  ck_assert_int_eq(FSP_ESTATE, -512);
  ck_assert_int_eq(FSP_EBADUSER, -513);
}
END_TEST

START_TEST(test_error_status_every_code) {
  static const struct code statuses[] = {
#define S(name, val, msg) {val, #name, msg},
      FSP_STATUS_MAP(S)
#undef S
  };
  size_t n = sizeof(statuses) / sizeof(statuses[0]);

  ck_assert_uint_eq(n, 25);
  for (size_t i = 0; i < n; i++) {
    /* protocol.md's tables: 1..19, 20 and 21 for authentication, 22..25
     * for folders. */
    ck_assert_int_eq(statuses[i].val, (int)i + 1);
    ck_assert_str_eq(fsp_status_str((uint16_t)statuses[i].val),
                     statuses[i].msg);
    ck_assert_str_eq(fsp_status_name((uint16_t)statuses[i].val),
                     statuses[i].name);
  }
  ck_assert_str_eq(fsp_status_name(FSP_ST_NOT_FOUND), "NOT_FOUND");
  ck_assert_str_eq(fsp_status_str(FSP_ST_NOT_FOUND), "no such file");
  ck_assert_str_eq(fsp_status_name(0), "UNKNOWN");
  ck_assert_str_eq(fsp_status_str(0), "unknown status");
  ck_assert_str_eq(fsp_status_name(26), "UNKNOWN");
  ck_assert_str_eq(fsp_status_str(0xffff), "unknown status");
}
END_TEST

START_TEST(test_error_op_names) {
  static const struct {
    unsigned val;
    const char *name;
  } ops[] = {
#define O(name, val, dir) {val, #name},
      FSP_OPCODE_MAP(O)
#undef O
  };
  size_t n = sizeof(ops) / sizeof(ops[0]);
  unsigned known = 0;

  ck_assert_uint_eq(n, 32);
  for (size_t i = 0; i < n; i++)
    ck_assert_str_eq(fsp_op_name((uint8_t)ops[i].val), ops[i].name);
  for (unsigned op = 0; op < 256; op++)
    if (fsp_op_name((uint8_t)op) != NULL)
      known++;
  ck_assert_uint_eq(known, n);
  ck_assert_ptr_null(fsp_op_name(0x00));
  ck_assert_ptr_null(fsp_op_name(0xff));
  ck_assert_str_eq(fsp_op_name(0x13), "GET");
}
END_TEST

Suite *error_suite(void) {
  Suite *s = suite_create("error");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_error_strerror_every_code);
  tcase_add_test(tc, test_error_strerror_unknown);
  tcase_add_test(tc, test_error_codes_distinct_and_in_range);
  tcase_add_test(tc, test_error_status_every_code);
  tcase_add_test(tc, test_error_op_names);
  suite_add_tcase(s, tc);
  return s;
}
