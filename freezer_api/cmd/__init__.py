"""Entry points: the only code that reads argv or the environment."""
