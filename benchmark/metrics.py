"""Re-export of `benchmark.measures.metrics` under its former name."""
from benchmark.measures.metrics import transfer_metrics

__all__ = ["transfer_metrics"]
