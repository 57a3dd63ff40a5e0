"""Collection never imports the UI: importing the collection side must not load textual or pgiam_tui.ui.

Each check runs in a fresh interpreter (subprocess) so modules already imported by pytest don't hide it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

COLLECTION_MODULES = [
    "pgiam_tui.monitor",
    "pgiam_tui.monitor_state",
    "pgiam_tui.jsonout",
    "pgiam_tui.collect",
    "pgiam_tui.collect.activity",
    "pgiam_tui.db",
    "pgiam_tui.db.connection",
    "pgiam_tui.db.conninfo",
    "pgiam_tui.db.queries",
    "pgiam_tui.aws",
    "pgiam_tui.commands.snapshot",
    "pgiam_tui.textsafe",
    "pgiam_tui.aws.errors",
    "pgiam_tui.collect.events",
    "pgiam_tui.collect.iam_mapping",
    "pgiam_tui.collect.logparse",
    "pgiam_tui.collect.log_sources",
    "pgiam_tui.aws.discovery",
    "pgiam_tui.aws.tokens",
    "pgiam_tui.aws.session",
    "pgiam_tui.aws.policy",
]

_PROBE = """
import importlib, json, sys
name = sys.argv[1]
try:
    importlib.import_module(name)
except ModuleNotFoundError as exc:
    if exc.name == name:
        print(json.dumps({"missing": True}))
        raise SystemExit(0)
    raise
bad = sorted(m for m in sys.modules if m == "textual" or m.startswith(("textual.", "pgiam_tui.ui", "rich")))
print(json.dumps({"missing": False, "ui_modules": bad}))
"""


def _probe(module: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _PROBE, module], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("module", COLLECTION_MODULES)
def test_collection_modules_do_not_import_the_ui(module: str) -> None:
    result = _probe(module)
    assert result["missing"] is False, f"{module} is missing"
    assert result["ui_modules"] == []


def test_the_probe_can_see_a_ui_import() -> None:
    """The check is not vacuous: a module that imports textual is caught."""
    assert _probe("textual.app")["ui_modules"] != []
