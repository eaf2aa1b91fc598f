"""Checks tests/conformance/README.md against the test sources.

Every row of the table must name at least one test, and every name must be
a test that runs: a C function defined with START_TEST and added to a test
case (tcase_add_test or tcase_add_loop_test), or a Python function
`def test_...` in a test script under tests/. Sections 2 to 7 of
protocol.md must each have at least one row.

Usage: check_table.py TESTS_DIR [unittest args]
"""

import os
import re
import sys
import unittest

ROW = re.compile(r"^\|\s*([0-9]+)\s*\|(.*)\|([^|]*)\|\s*$")
C_DEF = re.compile(r"START_TEST\(\s*(\w+)\s*\)")
C_RUN = re.compile(r"tcase_add_(?:loop_)?test\(\s*\w+\s*,\s*(\w+)")
PY_DEF = re.compile(r"^\s*def\s+(test_\w+)\s*\(", re.M)
SECTIONS = range(2, 8)


def parse_table(text):
    """Rows of the table: (line number, section, rule, [test names])."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        m = ROW.match(line)
        if not m or not m.group(1).isdigit():
            continue
        names = [t.strip() for t in m.group(3).split(",") if t.strip()]
        rows.append((n, int(m.group(1)), m.group(2).strip(), names))
    return rows


def known_tests(tests_dir):
    """(C tests defined, C tests run, Python tests defined) under tests_dir."""
    c_def, c_run, py_def = set(), set(), set()
    for root, _, files in os.walk(tests_dir):
        for f in files:
            path = os.path.join(root, f)
            if f.endswith(".c"):
                with open(path, encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
                c_def.update(C_DEF.findall(text))
                c_run.update(C_RUN.findall(text))
            elif f.endswith(".py"):
                with open(path, encoding="utf-8", errors="replace") as fh:
                    py_def.update(PY_DEF.findall(fh.read()))
    return c_def, c_run, py_def


def problems(rows, c_def, c_run, py_def):
    """Everything wrong with the table, one line each."""
    out = []
    for n, sec, rule, names in rows:
        if not names:
            out.append("line %d (section %d): no test for %r" % (n, sec, rule))
        for t in names:
            if t in c_def:
                if t not in c_run:
                    out.append("line %d: %s is defined but no test case runs "
                               "it" % (n, t))
            elif t not in py_def:
                out.append("line %d: no test named %s" % (n, t))
    covered = {sec for _, sec, _, _ in rows}
    for sec in SECTIONS:
        if sec not in covered:
            out.append("section %d of protocol.md has no rule" % sec)
    return out


TESTS_DIR = None


class TableTest(unittest.TestCase):
    def test_every_rule_names_tests_that_run(self):
        with open(os.path.join(TESTS_DIR, "conformance", "README.md"),
                  encoding="utf-8") as f:
            rows = parse_table(f.read())
        self.assertGreater(len(rows), 0)
        found = problems(rows, *known_tests(TESTS_DIR))
        self.assertEqual(found, [], "\n" + "\n".join(found))

    def test_checker_catches_bad_rows(self):
        # The checker itself must fail on what it is there to catch.
        table = "\n".join([
            "| 2 | a rule with no test | |",
            "| 3 | a rule with a missing test | test_nowhere |",
            "| 4 | a C test nobody runs | test_c_only |",
            "| 5 | good | test_c_run, test_py |",
            "| 6 | good | test_py |",
        ])
        found = problems(parse_table(table), {"test_c_only", "test_c_run"},
                         {"test_c_run"}, {"test_py"})
        self.assertEqual(len(found), 4, found)
        self.assertIn("no test for", found[0])
        self.assertIn("test_nowhere", found[1])
        self.assertIn("test_c_only", found[2])
        self.assertIn("section 7", found[3])


if __name__ == "__main__":
    TESTS_DIR = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:])
