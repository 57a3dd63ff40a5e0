"""The console's entries in Textual's command palette: the key table's actions, sort by any column, and
jump to any cluster. Titles are unique (the palette would list a duplicate twice)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pgiam_tui.ui.activity_model import COLUMN_LABELS, SORTABLE
from pgiam_tui.ui.keys import palette_entries


def palette_commands(clusters: Iterable[str] = ()) -> Iterator[tuple[str, str, str]]:
    """(title, help, action string run by App.run_action), each title once."""
    seen: set[str] = set()
    entries = [
        *palette_entries(),
        *(
            (f"Sort by {COLUMN_LABELS[key]}", f"Sort activity by {COLUMN_LABELS[key]}", f"sort_by({key!r})")
            for key in SORTABLE
        ),
        *((f"Cluster: {name}", f"Show {name}", f"select_cluster({name!r})") for name in clusters),
    ]
    for title, help_text, action in entries:
        if title not in seen:
            seen.add(title)
            yield title, help_text, action
