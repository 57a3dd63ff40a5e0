"""The documented scrape config and alert rules (docs/prometheus): valid for Prometheus, and every metric they
use is one `serve` exports. promtool checks and unit-tests them where it is installed (Debian: prometheus)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pgiam_devtools.sample import sample_snapshots
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pgiam_tui.exporter.metrics import FleetMetrics

DOCS = Path(__file__).resolve().parents[2] / "docs" / "prometheus"
README = Path(__file__).resolve().parents[2] / "README.md"


def exported_names() -> set[str]:
    fleet = FleetMetrics(s.name for s in sample_snapshots())
    for s in sample_snapshots():
        fleet.update(s)
    registry = CollectorRegistry()
    registry.register(fleet)
    names = set()
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        names.add(family.name)
        names.update(s.name for s in family.samples)
    return names


def test_every_rule_uses_exported_metrics_and_has_its_parts() -> None:
    rules = yaml.safe_load((DOCS / "alerts.yml").read_text())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {
        "PgiamRefusedLoginsRising",
        "PgiamClusterDown",
        "PgiamIamAuthDisabled",
    }
    exported = exported_names()
    for rule in rules:
        assert {"expr", "for", "labels", "annotations"} <= set(rule)
        used = set(re.findall(r"\bpgiam_[a-z_]+", rule["expr"]))
        assert used and used <= exported, (rule["alert"], used - exported)


def test_the_readme_shows_the_same_rules() -> None:
    readme = README.read_text()
    for rule in yaml.safe_load((DOCS / "alerts.yml").read_text())["groups"][0]["rules"]:
        assert rule["expr"] in readme, rule["alert"]


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (apt install prometheus)"
)
def test_promtool_checks_and_unit_tests_the_rules() -> None:
    for args in (["check", "rules", "alerts.yml"], ["check", "config", "scrape.yml"],
                 ["test", "rules", "alerts_test.yml"]):  # fmt: skip
        done = subprocess.run(["promtool", *args], cwd=DOCS, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
