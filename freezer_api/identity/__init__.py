"""Adapters to OpenStack Identity (Keystone), below the rules.

Like ``freezer_api.storage`` this layer does I/O and knows no HTTP and no
business rules; ``freezer_api.core`` calls it through the small interface
it documents (``trust_id(token, user_id, project_id)``).
"""
