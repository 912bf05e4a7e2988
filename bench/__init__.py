"""Side-by-side benchmark of freezer-api against upstream freezer-api."""
