"""Payments: taking an order's money through a provider, exactly once, and giving it back.

Owns nothing yet but the provider interface (``providers.base``); the tables, the service
and the routes follow (issue 13). May import: ``emporium.core`` (settings).
"""
