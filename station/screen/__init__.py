"""The counter screen: a live page of what the station knows, served by the daemon when enabled.

Nothing here is imported unless ``[screen] enabled = true`` (Starlette and uvicorn cost memory)."""
