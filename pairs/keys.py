"""Deterministic unit keys: a hash of everything that changes a unit's result."""
import hashlib
import json


def unit_key(kind: str, **fields) -> str:
    """`kind-<16 hex>` from the JSON of `fields` (sorted keys), stable across processes and runs."""
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"
