"""HTTP plumbing: errors as problem details, middleware, hardening, client address, rate
limits, OpenAPI declarations, the API viewer and the operations endpoints."""
