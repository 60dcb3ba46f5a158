"""Fixtures for the simulator tests; see simrig.py."""
from simrig import browser, demo, phone_page, rig  # noqa: F401  (pytest fixtures)
