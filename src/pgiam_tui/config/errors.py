"""Config errors and where they are: tomllib keeps no positions, so a light scan of the text finds the line of
each table and key, and every ConfigError names file, line and key."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from pgiam_tui.errors import PgiamError


class ConfigError(PgiamError):
    """A problem in the config file; str() names file, line and key (exit code 2 in the CLI)."""

    default_step: ClassVar[str] = "config"


_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_RE = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


@dataclass
class Lines:
    """Line numbers found by a light scan of the TOML text (tomllib keeps no positions)."""

    defaults: int | None = None
    defaults_keys: dict[str, int] = field(default_factory=dict)
    top_keys: dict[str, int] = field(default_factory=dict)
    clusters: list[int] = field(default_factory=list)
    cluster_keys: list[dict[str, int]] = field(default_factory=list)

    def of(self, index: int | None, key: str | None = None) -> int | None:
        """Line of KEY in cluster INDEX (None = the defaults table), else of the table itself."""
        if index is None:
            if key is not None and key in self.defaults_keys:
                return self.defaults_keys[key]
            return self.defaults
        if index < len(self.clusters):
            if key is not None:
                found = self.cluster_keys[index].get(key)
                if found is not None:
                    return found
            return self.clusters[index]
        # `clusters = [{...}, ...]` written inline: the best we know is where the array starts.
        return self.top_keys.get("clusters")


def scan_lines(text: str) -> Lines:
    lines = Lines()
    section: str | None = None  # "defaults", "clusters", "clusters.tunnels", "other" or None (top level)
    in_multiline: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if in_multiline is not None:
            if raw.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER_RE.match(raw)
        if header:
            name = header.group(2).replace(" ", "")
            if header.group(1) == "[[" and name == "clusters":
                section = "clusters"
                lines.clusters.append(number)
                lines.cluster_keys.append({})
            elif name == "defaults":
                section = "defaults"
                lines.defaults = number
            elif name.startswith("clusters.") and lines.clusters:
                section = "clusters.sub"
                sub = name.split(".", 1)[1]
                lines.cluster_keys[-1].setdefault(sub, number)
            elif name.startswith("defaults."):
                section = "defaults.sub"
                lines.defaults_keys.setdefault(name.split(".", 1)[1], number)
            else:
                section = "other"
                lines.top_keys.setdefault(name.split(".", 1)[0], number)
            continue
        key_match = _KEY_RE.match(raw)
        if key_match is None:
            continue
        key = key_match.group(1).strip("\"'").split(".", 1)[0]
        for quote in ('"""', "'''"):
            if raw.count(quote) % 2 == 1:
                in_multiline = quote
        if section is None:
            lines.top_keys.setdefault(key, number)
        elif section == "defaults":
            lines.defaults_keys.setdefault(key, number)
        elif section == "clusters":
            lines.cluster_keys[-1].setdefault(key, number)
    return lines
