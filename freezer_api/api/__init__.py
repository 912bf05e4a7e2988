"""The HTTP layer: Falcon resources, routing, errors and WSGI plumbing."""
