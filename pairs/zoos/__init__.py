"""Built-in zoo catalogs; importing this package registers them."""
from pairs.zoos import micro, timm_zoo  # noqa: F401
