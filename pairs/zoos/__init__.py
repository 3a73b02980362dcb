"""Built-in zoo catalogs; importing this package registers them."""
from pairs.zoos import micro  # noqa: F401
