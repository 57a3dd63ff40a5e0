"""The stand-in is the product's independent oracle: importing every pgiam_sandbox module loads no pgiam_tui.

Runs in a fresh interpreter (subprocess), so modules pytest already imported cannot hide an import.
"""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import importlib, json, pkgutil, sys
root = sys.argv[1]
package = importlib.import_module(root)
names = [root] + [m.name for m in pkgutil.walk_packages(package.__path__, root + ".")]
for name in names:
    importlib.import_module(name)
product = sorted(m for m in sys.modules if m == "pgiam_tui" or m.startswith("pgiam_tui."))
print(json.dumps({"imported": names, "product_modules": product}))
"""


def _probe(package: str) -> dict[str, list[str]]:
    command = [sys.executable, "-c", _PROBE, package]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_no_sandbox_module_imports_the_product() -> None:
    result = _probe("pgiam_sandbox")
    # every module, including the evaluator and the token check that once borrowed the product's
    assert {"pgiam_sandbox.iam_eval", "pgiam_sandbox.token_check", "pgiam_sandbox.moto_guards"} <= set(
        result["imported"]
    )
    assert result["product_modules"] == []


def test_the_probe_sees_a_product_import() -> None:
    """Not vacuous: importing a product package is noticed by the same probe."""
    assert _probe("pgiam_tui.aws")["product_modules"] != []
