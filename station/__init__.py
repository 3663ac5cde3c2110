"""The station daemon on the Raspberry Pi: config, event loop, counter workflow, store, CLI."""

__version__ = "0.1.0"
