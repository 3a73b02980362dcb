"""What to run: zoo catalogs, pair sampling and plans (Parquet)."""
from pairs import probe, zoos  # noqa: F401  (register the built-in and probed zoos)
from pairs.catalog import ModelEntry, Zoo, get_zoo, list_zoos, register_zoo
from pairs.keys import unit_key

__all__ = ["ModelEntry", "Zoo", "get_zoo", "list_zoos", "register_zoo", "unit_key"]
