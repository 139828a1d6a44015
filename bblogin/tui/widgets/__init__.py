"""Widgets of the account switcher."""
