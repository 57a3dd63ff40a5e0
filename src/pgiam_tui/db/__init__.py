"""pgiam_tui.db"""
