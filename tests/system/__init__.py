"""Whole-system tests: processes killed, installs, supervision, security against a real broker."""
