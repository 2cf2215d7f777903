"""Test doubles of outside services: real servers on loopback that tests point Emporium at.

Imported by tests as ``doubles.<module>`` (pytest puts ``tests/`` on ``sys.path``).
"""
