"""Shared fixtures: one cache for the whole session, so the tiny zoo trains once."""
import pytest


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_zoo(cache):
    """The built-in `tiny` zoo (three fast models), trained into the session cache."""
    from benchmark.models.microzoo import ensure_zoo_weights
    from pairs import get_zoo
    zoo = get_zoo("tiny")
    ensure_zoo_weights(zoo, cache, progress=False)
    return zoo


class _Killed(BaseException):
    """The process 'dies' right after a checkpoint was saved (not an Exception: nothing that
    isolates one unit's failure from another's catches it, as nothing catches a kill)."""


@pytest.fixture
def killed_after_checkpoint(monkeypatch):
    """`killed_after_checkpoint(run, saves=1)`: calls `run()` with the transfer units' checkpoint
    writer stopping the process right after its `saves`-th save, as a kill would, and checks
    that it stopped."""
    from benchmark.units import checkpoint as module

    def run_until_killed(run, saves: int = 1):
        save, done = module.save_checkpoint, []

        def save_then_die(path, state):
            save(path, state)
            done.append(path)
            if len(done) == saves:
                raise _Killed

        monkeypatch.setattr(module, "save_checkpoint", save_then_die)
        try:
            with pytest.raises(_Killed):
                run()
        finally:
            monkeypatch.setattr(module, "save_checkpoint", save)
    return run_until_killed
