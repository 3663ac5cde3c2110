"""Hardware drivers: scale protocols and transport, barcode scanners, the GPIO panel, simulators."""
