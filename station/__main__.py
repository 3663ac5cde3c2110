"""``python -m station`` runs the ``station`` command."""

from .cli import main

main()
