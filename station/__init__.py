"""The station daemon on the Raspberry Pi: config, event loop, counter workflow, store, CLI."""

from common.version import version

__version__ = version()
