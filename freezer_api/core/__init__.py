"""The rules of the service: validation, documents and state machines.

Nothing here speaks HTTP or touches an engine directly; managers receive a
``StorageDriver`` plus a clock and an id factory, so every rule can be unit
tested without a server.
"""
