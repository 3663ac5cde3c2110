"""Tests of station/."""
