"""Barcode scanners: serial (CR/LF-terminated) and evdev/HID keyboard-wedge readers."""
