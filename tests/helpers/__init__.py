"""Plain helpers shared by test modules (not fixtures: each module keeps its own fixture, built on these)."""
