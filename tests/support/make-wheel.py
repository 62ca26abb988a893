#!/usr/bin/env python3
"""Writes a small pure-Python wheel, well formed or crafted to be refused.

    make-wheel.py OUT_DIR NAME VERSION KIND

KIND:
  good        NAME/__init__.py and a dist-info whose RECORD is right
  bad-record  the same, but RECORD's sha256 of NAME/__init__.py is that of other bytes
  escape      a good wheel plus the entry ../../../../tmp/hoist-escape-NAME, listed in RECORD
              with its right hash: a path that leaves site-packages

Prints the wheel's path. Used by tests/it/pip.rs for the bad-input tests, served from a local
--find-links folder. Standard library only; the zip is deterministic (fixed timestamps).
"""

import base64
import hashlib
import os
import sys
import zipfile


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def main():
    out_dir, name, version, kind = sys.argv[1:5]
    if kind not in ("good", "bad-record", "escape"):
        sys.exit(f"make-wheel.py: unknown KIND {kind!r}")
    dist_info = f"{name}-{version}.dist-info"
    files = [
        (f"{name}/__init__.py", f"VALUE = {name!r}\n".encode()),
        (
            f"{dist_info}/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        ),
        (
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: hoist-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n",
        ),
    ]
    if kind == "escape":
        files.append((f"../../../../tmp/hoist-escape-{name}", b"outside\n"))
    record = []
    for path, data in files:
        hashed = data
        if kind == "bad-record" and path.endswith("/__init__.py"):
            hashed = b"other bytes\n"
        record.append(f"{path},{record_hash(hashed)},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))

    path = os.path.join(out_dir, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for entry, data in files:
            info = zipfile.ZipInfo(entry, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    print(path)


if __name__ == "__main__":
    main()
