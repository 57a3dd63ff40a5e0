"""pgiam_tui.sandbox"""
