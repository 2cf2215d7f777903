"""HTTP plumbing: errors as problem details, middleware, hardening, client address, rate
limits, OpenAPI declarations, ``Audience`` and ``audience_router`` (``routing``), the API
viewer and the operations endpoints."""
