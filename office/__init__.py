"""The support office's work (支援室): matching proposals against the
catalogue, the nightly rematch, and the coordinator's commands.

This package orchestrates: it reads and writes through ``models`` (tables and
typed queries) and ranks through ``matcher`` (text → rankings). ``web`` calls
it; nothing here imports Flask. Map: docs/architecture.md.
"""
