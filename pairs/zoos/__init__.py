"""Built-in zoo catalogs and the readers of catalog files; importing this package registers
them (reach them through `pairs.get_zoo`)."""
from pairs.zoos import catalog_file, micro, timm_zoo  # noqa: F401

__all__: list[str] = []
