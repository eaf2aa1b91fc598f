#include "helpers.h"
Suite *spec_suite(void) { return suite_create("spec"); }
