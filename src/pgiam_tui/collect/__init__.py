"""pgiam_tui.collect"""
