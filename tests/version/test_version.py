#!/usr/bin/env python3
"""`fsd --version` and `fsc --version` name the program's version, the
libfsproto version and the protocol version, in one line each.

Usage: test_version.py PROJECT_VERSION FSPROTO_H FSD FSC
"""
import re
import subprocess
import sys


def main(version, header, programs):
    with open(header) as fh:
        proto = re.search(r"#define FSP_HELLO_VERSION (\d+)u", fh.read()).group(1)
    failed = 0
    for prog in programs:
        name = prog.rsplit("/", 1)[-1]
        r = subprocess.run([prog, "--version"], capture_output=True,
                           text=True, timeout=30)
        want = "%s %s (libfsproto %s, protocol %s)\n" % (name, version,
                                                         version, proto)
        if r.returncode != 0 or r.stdout != want:
            print("%s --version: exit %d, printed %r; want %r" % (
                name, r.returncode, r.stdout, want))
            failed = 1
        else:
            print("%s --version: %s" % (name, r.stdout.strip()))
    return failed


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
