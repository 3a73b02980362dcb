"""Shared fixtures: one cache for the whole session, so the tiny zoo trains once."""
import pytest


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_zoo(cache):
    """The built-in `tiny` zoo (three fast models), trained into the session cache."""
    from benchmark.microzoo import ensure_zoo_weights
    from pairs import get_zoo
    zoo = get_zoo("tiny")
    ensure_zoo_weights(zoo, cache, progress=False)
    return zoo
