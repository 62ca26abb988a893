"""hoist's PEP 517 build frontend, run by the image's python3 in the sandbox.

hoist has already installed the build requirements (PEP 518 `requires`,
resolved and installed natively) on PYTHONPATH; this script only unpacks
the sdist, asks the backend what else it wants, and builds the wheel.

    python3 -c SCRIPT SDIST OUT BACKEND BACKEND_PATH_JSON

Exit 3: the backend asked for requirements that are not installed.
"""

import importlib
import importlib.metadata
import json
import os
import re
import sys
import tarfile
import zipfile

sdist, out, backend_spec, backend_path = sys.argv[1:5]
backend_path = json.loads(backend_path)

# Unpack under /tmp, which the sandbox discards. The sandbox is the
# boundary that matters, but the archive is still read with the "data"
# filter where this Python has it (3.12, and 3.8.17+ backports).
work = "/tmp/hoist-src"
os.makedirs(work)
if sdist.endswith(".zip"):
    with zipfile.ZipFile(sdist) as z:
        z.extractall(work)
else:
    with tarfile.open(sdist) as t:
        if hasattr(tarfile, "data_filter"):
            t.extractall(work, filter="data")
        else:
            t.extractall(work)
tops = os.listdir(work)
src = os.path.join(work, tops[0]) if len(tops) == 1 else work
os.chdir(src)

# PEP 517: backend-path entries are relative to the source tree and come
# first on sys.path; the hooks run with the source tree as working folder.
for p in reversed(backend_path):
    sys.path.insert(0, os.path.join(src, p))

module, _, obj = backend_spec.partition(":")
backend = importlib.import_module(module)
for attr in filter(None, obj.split(".")):
    backend = getattr(backend, attr)


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(requirement):
    """By name only: hoist resolved the versions of what it installed."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not m:
        return False
    try:
        importlib.metadata.distribution(normalize(m.group(1)))
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


hook = getattr(backend, "get_requires_for_build_wheel", None)
wanted = list(hook({})) if hook else []
missing = [r for r in wanted if not installed(r)]
if missing:
    print(
        "hoist: the build backend %s also asks for %s, which [build-system] requires "
        "does not name; hoist installs only what pyproject.toml names"
        % (backend_spec, ", ".join(missing)),
        file=sys.stderr,
    )
    sys.exit(3)

os.makedirs(out, exist_ok=True)
name = backend.build_wheel(out, {})
print("hoist: built " + name)
