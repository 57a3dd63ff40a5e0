"""The console's entries in Textual's command palette: every key action, and sort by any column."""

from __future__ import annotations

from pgiam_tui.ui.activity_model import COLUMN_LABELS, SORTABLE

# (title, help, action string run by App.run_action) -- the key is named in the help text.
PALETTE: tuple[tuple[str, str, str], ...] = (
    ("Help", "Show the keys (?)", "help"),
    ("Filter", "Filter the focused pane (/)", "filter"),
    ("Sort: next column", "Cycle the activity sort column (s)", "sort"),
    ("Sort: reverse", "Flip the activity sort direction (S)", "reverse_sort"),
    *(
        (f"Sort by {COLUMN_LABELS[key]}", f"Sort activity by {COLUMN_LABELS[key]}", f"sort_by({key!r})")
        for key in SORTABLE
    ),
    ("Hide idle sessions", "Toggle idle sessions (i)", "hide_idle"),
    ("Background processes", "Show / hide autovacuum, walwriter, ... (g)", "background"),
    ("Blocking tree", "Toggle the blockers -> blocked tree (b)", "tree"),
    ("All clusters' sessions", "Merged activity view (a)", "all_sessions"),
    ("Session detail", "Detail of the selected session (enter)", "open_detail"),
    ("Pause / resume", "Pause or resume polling (p)", "pause"),
    ("Faster refresh", "Shorter refresh interval (-)", "interval(-1)"),
    ("Slower refresh", "Longer refresh interval (+)", "interval(1)"),
    ("Refresh now", "Collect the selected cluster now (r)", "refresh"),
    ("Connection check", "Check the selected cluster step by step (c)", "check"),
    ("Zoom pane", "Maximise / restore the focused pane (z)", "zoom"),
    (
        "Cancel backend",
        "pg_cancel_backend on the selected session, after confirmation (k)",
        "signal_current('cancel')",
    ),
    (
        "Terminate backend",
        "pg_terminate_backend on the selected session, after confirmation (t)",
        "signal_current('terminate')",
    ),
)
