"""Simulators that speak the real bytes of the scale and the scanner, over a pty or a TCP socket."""
