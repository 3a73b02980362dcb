"""Built-in zoo catalogs; importing this package registers them (reach them through
`pairs.get_zoo`)."""
from pairs.zoos import micro, timm_zoo  # noqa: F401

__all__: list[str] = []
