"""Emporium: a headless commerce back-end.

Rooms (one package per domain) depend one way, checked by import-linter:
``cli``/``app`` -> ``importers`` -> ``reviews`` -> ``catalog`` -> ``core``.
"""

__version__ = "0.1.0"
