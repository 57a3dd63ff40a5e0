"""pgiam_tui.ui"""
