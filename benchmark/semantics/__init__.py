"""Class-name semantics: how related are the classes where a teacher's complementary knowledge
sits (the authors' "areas of expertise")?

- `encoders`: text encoders by name (default `clip-vit-b-32`), their weights resolved like model
  weights, and `embed_texts`.
- `similarity`: the mean and max pairwise cosine similarity of each pair's top-p% classes, and
  random class sets of the same size, vectorised over pairs (numpy only).
- `run`: a results folder's class names -> `class_embeddings`, `pair_similarity`
  (`ktbench similarity`).
Names load on first use.
"""
from results.lazy import lazy_exports

_NAMES = {
    "DEFAULT_ENCODER": "encoders", "embed_texts": "encoders", "get_text_encoder": "encoders",
    "list_text_encoders": "encoders", "register_text_encoder": "encoders",
    "resolve_text_weights": "encoders", "RandomSets": "similarity",
    "pair_similarity": "similarity", "prefix_similarity": "similarity",
    "run_similarity": "run",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_exports(__name__, _NAMES)
