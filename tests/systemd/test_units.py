#!/usr/bin/env python3
"""fsd.service and fsd.socket pass `systemd-analyze verify`, and the
service's sandbox keeps a low `systemd-analyze security` exposure.

Usage: test_units.py FSD_SERVICE_IN FSD_SOCKET FSD
The unit is checked with ExecStart pointing at FSD (verify wants the binary
to exist). Skipped (77) where systemd-analyze is missing.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
# The exposure systemd-analyze security gave when the sandbox was written
# (1.1, "OK") plus a margin: a change that loosens the sandbox fails here.
MAX_EXPOSURE = 2.0


def main(service_in, socket_unit, fsd):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("systemd-analyze not found: skipped")
        return SKIP
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        with open(service_in) as fh:
            text = fh.read().replace("@bindir@/fsd", os.path.abspath(fsd))
        service = os.path.join(tmp, "fsd.service")
        with open(service, "w") as fh:
            fh.write(text)
        shutil.copy(socket_unit, os.path.join(tmp, "fsd.socket"))

        # --man=no: the pages named in Documentation= need not be installed.
        r = subprocess.run([analyze, "verify", "--man=no", service,
                            os.path.join(tmp, "fsd.socket")],
                           capture_output=True, text=True, cwd=tmp)
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0 or out:
            print("systemd-analyze verify: exit %d\n%s" % (r.returncode, out))
            failed = 1
        else:
            print("systemd-analyze verify: fsd.service and fsd.socket are clean")

        r = subprocess.run([analyze, "security", "--offline=true", service],
                           capture_output=True, text=True, cwd=tmp)
        m = re.search(r"Overall exposure level for fsd\.service: ([0-9.]+)",
                      r.stdout)
        if m is None:
            print("systemd-analyze security --offline unsupported here; "
                  "exposure not checked")
        elif float(m.group(1)) > MAX_EXPOSURE:
            print(r.stdout)
            print("fsd.service: exposure %s is above %.1f: which setting "
                  "was loosened?" % (m.group(1), MAX_EXPOSURE))
            failed = 1
        else:
            print("systemd-analyze security: exposure %s" % m.group(1))
    return failed


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
