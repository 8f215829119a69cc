"""sqlstage: apply plain, numbered SQL migrations to named environments, safely."""

__version__ = "0.1.0"
