#include "helpers.h"
Suite *decoder_suite(void) { return suite_create("decoder"); }
