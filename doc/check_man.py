#!/usr/bin/env python3
"""Checks the manual pages against the programs they describe.

  check_man.py options PAGE.scd PROGRAM
      Every option that `PROGRAM --help` lists has an entry in the page's
      OPTIONS section, and every entry there names an option --help lists.
      When --help has a "Commands:" block, the same holds for each command:
      `PROGRAM CMD --help` against the page's "## CMD" subsection under
      COMMANDS. Exit statuses listed under "Exit status:" in --help must be
      entries of the page's EXIT STATUS section, which every page needs.

  check_man.py render PAGE
      The rendered page (roff) formats without a single groff warning.

A failure names the option, the command and the page to edit, so whoever
adds an option to a program learns here that its page needs it too.
"""
import os
import re
import shutil
import subprocess
import sys

SKIP = 77  # meson's "skipped" exit status

# An option at the start of a --help line ("  -s, --server HOST:PORT  ..."),
# indented a little: deeper lines continue the text of the line above.
HELP_OPT = re.compile(r"^ {1,8}(-{1,2}[A-Za-z0-9][\w-]*)((?:, *-{1,2}[A-Za-z0-9][\w-]*)*)")
HELP_CMD = re.compile(r"^ {1,4}([a-z][\w-]*)")
HELP_EXIT = re.compile(r"^ {1,4}(\d+) ")
# An entry in an scdoc page: a line starting with "*-", e.g.
# "*-o*, *--output* _PATH_".
PAGE_NAME = re.compile(r"\*(-{1,2}[A-Za-z0-9][\w-]*)\*")
PAGE_EXIT = re.compile(r"^\*(\d+)\*")


def run_help(program, args):
    r = subprocess.run([program] + args + ["--help"], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        sys.exit("check_man: `%s %s --help` exited %d: %s" % (
            os.path.basename(program), " ".join(args), r.returncode,
            r.stderr.strip()))
    return r.stdout


def help_options(text):
    """The options a --help text lists, as a list of alias sets."""
    opts = []
    for line in text.splitlines():
        m = HELP_OPT.match(line)
        if m:
            names = {m.group(1)}
            names.update(n.strip() for n in m.group(2).split(",") if n.strip())
            opts.append(names)
    return opts


def help_block(text, title):
    """Lines of the block that starts with the line `title`."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.strip() == title:
            inside = True
        elif inside and line.strip() == "":
            break
        elif inside:
            lines.append(line)
    return lines


def parse_page(path):
    """{(section, subsection): {"opts": [alias sets], "exits": set}}."""
    parts = {}
    section, sub = "", ""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith("## "):
                sub = line[3:].split()[0]
            elif line.startswith("# "):
                section, sub = line[2:].strip(), ""
            part = parts.setdefault((section, sub), {"opts": [], "exits": set()})
            names = set(PAGE_NAME.findall(line)) if line.startswith("*-") else None
            if names:
                part["opts"].append(names)
            m = PAGE_EXIT.match(line)
            if m:
                part["exits"].add(m.group(1))
    return parts


def compare(errors, page, where, helpcmd, helped, documented):
    """Both ways: each --help option has an entry, each entry an option."""
    have = set().union(*documented) if documented else set()
    for names in helped:
        missing = sorted(n for n in names if n not in have)
        for n in missing:
            errors.append(
                "%s: `%s` lists the option %s, but %s does not document it: "
                "add a line `*%s*` there (with _ARG_ after it if it takes "
                "one), then its description indented by a tab" % (
                    page, helpcmd, n, where, n))
    listed = set().union(*helped) if helped else set()
    for names in documented:
        if not names & listed:
            errors.append(
                "%s: %s documents %s, which `%s` does not list: remove the "
                "entry, or list the option in --help" % (
                    page, where, ", ".join(sorted(names)), helpcmd))


def check_options(page, program):
    prog = os.path.basename(program)
    parts = parse_page(page)
    errors = []
    if ("OPTIONS", "") not in parts:
        errors.append("%s: no OPTIONS section" % page)
    main_help = run_help(program, [])
    compare(errors, page, "its OPTIONS section", prog + " --help",
            help_options(main_help),
            parts.get(("OPTIONS", ""), {"opts": []})["opts"])

    commands = [m.group(1) for m in map(HELP_CMD.match,
                                        help_block(main_help, "Commands:")) if m]
    for cmd in commands:
        where = "COMMANDS > \"## %s\"" % cmd
        if ("COMMANDS", cmd) not in parts:
            errors.append("%s: `%s --help` lists the command %s, but the page "
                          "has no \"## %s\" subsection under COMMANDS" % (
                              page, prog, cmd, cmd))
            continue
        compare(errors, page, where, "%s %s --help" % (prog, cmd),
                help_options(run_help(program, [cmd])),
                parts[("COMMANDS", cmd)]["opts"])
    for (section, sub) in parts:
        if section == "COMMANDS" and sub and sub not in commands:
            errors.append("%s: COMMANDS documents %s, which `%s --help` does "
                          "not list" % (page, sub, prog))

    if ("EXIT STATUS", "") not in parts:
        errors.append("%s: no EXIT STATUS section" % page)
    else:
        documented = parts[("EXIT STATUS", "")]["exits"]
        for line in help_block(main_help, "Exit status:"):
            m = HELP_EXIT.match(line)
            if m and m.group(1) not in documented:
                errors.append("%s: `%s --help` lists exit status %s, but "
                              "EXIT STATUS does not" % (page, prog, m.group(1)))
    for e in errors:
        print(e, file=sys.stderr)
    if not errors:
        n = len(help_options(main_help))
        print("%s: %d options%s match `%s --help`" % (
            page, n, " and %d commands" % len(commands) if commands else "",
            prog))
    return 1 if errors else 0


def check_render(page):
    groff = shutil.which("groff")
    if groff is None:
        print("groff not found: render check skipped")
        return SKIP
    # -t: scdoc writes tables for tbl; -ww: every warning; -z: no output.
    r = subprocess.run([groff, "-t", "-man", "-ww", "-z", "-Tutf8", page],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or r.stderr.strip():
        print("%s: groff -ww reports:\n%s" % (page, r.stderr.strip()),
              file=sys.stderr)
        return 1
    print("%s renders without warnings" % page)
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "options":
        return check_options(argv[2], argv[3])
    if len(argv) == 3 and argv[1] == "render":
        return check_render(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
