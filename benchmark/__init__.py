"""How one unit of work runs: data, models, predictions, statistics, transfer, launching."""
