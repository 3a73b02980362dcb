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
from typing import TYPE_CHECKING

from results.lazy import lazy_exports

if TYPE_CHECKING:        # the face's names (results.lazy: loaded on first use)
    from benchmark.semantics.encoders import (DEFAULT_ENCODER, embed_texts, get_text_encoder,
                                              list_text_encoders, register_text_encoder,
                                              resolve_text_weights)
    from benchmark.semantics.run import run_similarity
    from benchmark.semantics.similarity import RandomSets, pair_similarity, prefix_similarity

__getattr__, __all__ = lazy_exports(__name__, __file__)
