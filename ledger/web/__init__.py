"""The central office's dashboard (``ledger serve``): figures for a period, the fleet, CSV."""
