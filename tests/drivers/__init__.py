"""Tests of drivers/."""
