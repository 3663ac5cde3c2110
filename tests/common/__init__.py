"""Tests of common/: i18n, settings, units."""
