"""Deep merge used by every PATCH (spec D6)."""

import copy


def deep_merge(base: dict, patch: dict) -> dict:
    """Return ``base`` updated by ``patch`` without mutating either.

    Objects merge key by key, recursively; arrays and scalars in ``patch``
    replace what ``base`` had.
    """
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
