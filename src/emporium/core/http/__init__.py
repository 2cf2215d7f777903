"""HTTP plumbing: errors as problem details, middleware, hardening, client address, rate
limits, OpenAPI declarations, ``Audience`` and ``audience_router`` (``routing``), the API
viewer, the web admin's files at ``/admin/`` (``admin_ui``) and the operations endpoints."""
