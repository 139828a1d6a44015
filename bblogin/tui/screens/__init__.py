"""Screens of the account switcher."""
