"""House rule: ``dbsync/`` is the library and never imports Celery."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import dbsync

PROBE = """
import importlib, pkgutil, sys
import dbsync
for module in pkgutil.walk_packages(dbsync.__path__, "dbsync."):
    importlib.import_module(module.name)
print(",".join(sorted(name for name in sys.modules if name.split(".")[0] == "celery")))
"""


def test_importing_every_dbsync_module_loads_no_celery_module() -> None:
    # a fresh interpreter: this one may have imported celery for other tests
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == ""


def test_the_probe_sees_every_dbsync_module() -> None:
    names = {module.name for module in pkgutil.walk_packages(dbsync.__path__, "dbsync.")}
    assert {
        "dbsync.sync.run",
        "dbsync.ops.health",
        "dbsync.backends.mysql.target",
        "dbsync.cli",
    } <= names
