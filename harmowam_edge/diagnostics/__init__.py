"""Diagnostics: `harmowam-edge bench` (the runtime's figures) and `harmowam-edge doctor` (is this machine ready)."""
