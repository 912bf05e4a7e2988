"""Errors of the identity adapters, mapped to API errors by the core."""


class IdentityError(Exception):
    """Base class: the message is safe to show to the caller."""


class Unavailable(IdentityError):
    """Keystone could not be reached or failed."""


class Refused(IdentityError):
    """Keystone refused what was asked on the caller's behalf."""
