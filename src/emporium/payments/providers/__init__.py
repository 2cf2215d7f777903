"""Payment providers: each a module behind the interface of :mod:`.base`."""
