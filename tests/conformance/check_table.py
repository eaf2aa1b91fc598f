"""Checks tests/conformance/README.md against the test sources.

Every row of the table must name at least one test, and every name must be
a test that runs: a C function defined with START_TEST and added to a test
case (tcase_add_test or tcase_add_loop_test), a Python function
`def test_...` in a test script under tests/, or a Python function
`def case_NAME` of an integration script whose case list, in the
meson.build beside it, names 'NAME'. Sections 2 to 7, 10 and 11 of
protocol.md must each have at least one row.

Usage: check_table.py TESTS_DIR [unittest args]
"""

import os
import re
import sys
import tempfile
import unittest

ROW = re.compile(r"^\|\s*([0-9]+)\s*\|(.*)\|([^|]*)\|\s*$")
C_DEF = re.compile(r"START_TEST\(\s*(\w+)\s*\)")
C_RUN = re.compile(r"tcase_add_(?:loop_)?test\(\s*\w+\s*,\s*(\w+)")
PY_DEF = re.compile(r"^\s*def\s+(test_\w+)\s*\(", re.M)
PY_CASE = re.compile(r"^def\s+case_(\w+)\s*\(", re.M)
SECTIONS = list(range(2, 8)) + [10, 11]


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


def read(path):
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def known_tests(tests_dir):
    """(tests defined, tests run, Python tests defined) under tests_dir.

    The first two hold C tests and integration cases (case_NAME), which
    exist only once something runs them: a test case for C, the case list
    of the meson.build in the script's folder for a case."""
    defined, run, py_def = set(), set(), set()
    for root, _, files in os.walk(tests_dir):
        build = os.path.join(root, "meson.build")
        listed = read(build) if os.path.exists(build) else ""
        for f in files:
            path = os.path.join(root, f)
            if f.endswith(".c"):
                text = read(path)
                defined.update(C_DEF.findall(text))
                run.update(C_RUN.findall(text))
            elif f.endswith(".py"):
                text = read(path)
                py_def.update(PY_DEF.findall(text))
                for case in PY_CASE.findall(text):
                    defined.add("case_" + case)
                    if "'%s'" % case in listed:
                        run.add("case_" + case)
    return defined, run, py_def


def problems(rows, c_def, c_run, py_def):
    """Everything wrong with the table, one line each. c_def and c_run are
    the C tests and integration cases defined and run."""
    out = []
    for n, sec, rule, names in rows:
        if not names:
            out.append("line %d (section %d): no test for %r" % (n, sec, rule))
        for t in names:
            if t in c_def:
                if t not in c_run:
                    out.append("line %d: %s is defined but nothing runs it"
                               % (n, t))
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
        self.assertEqual(len(found), 6, found)
        self.assertIn("no test for", found[0])
        self.assertIn("test_nowhere", found[1])
        self.assertIn("test_c_only", found[2])
        self.assertIn("section 7", found[3])
        self.assertIn("section 10", found[4])
        self.assertIn("section 11", found[5])

    def test_checker_requires_sections_10_and_11(self):
        rows = parse_table("\n".join(
            "| %d | a rule | test_py |" % sec for sec in range(2, 11)))
        found = problems(rows, set(), set(), {"test_py"})
        self.assertEqual(found, ["section 11 of protocol.md has no rule"])

    def test_checker_knows_integration_cases(self):
        # A case exists once the meson.build beside its script lists it.
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "it.py"), "w") as f:
                f.write("def case_listed(ctx):\n    pass\n\n\n"
                        "def case_unlisted(ctx):\n    pass\n")
            with open(os.path.join(d, "meson.build"), "w") as f:
                f.write("foreach case : ['listed', 'unlisted_not']\n")
            defined, run, py_def = known_tests(d)
        self.assertEqual(defined, {"case_listed", "case_unlisted"})
        self.assertEqual(run, {"case_listed"})
        table = "\n".join([
            "| 10 | run | case_listed |",
            "| 11 | not run | case_unlisted |",
            "| 11 | missing | case_nowhere |",
        ])
        found = problems(parse_table(table), defined, run, py_def)
        self.assertEqual(len(found), 2 + 6, found)  # + sections 2 to 7
        self.assertIn("case_unlisted is defined but nothing runs it", found[0])
        self.assertIn("no test named case_nowhere", found[1])


if __name__ == "__main__":
    TESTS_DIR = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:])
