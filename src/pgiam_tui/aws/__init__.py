"""pgiam_tui.aws"""
