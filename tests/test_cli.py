"""The `ktbench` CLI: bad input gets one clear line on stderr, exit code 2, and writes nothing."""
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli.main import main

REPO = Path(__file__).resolve().parents[1]


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("argv, message", [
    (["plan", "--zoo", "nope", "--all", "--out", "{tmp}/p.parquet"], "unknown zoo 'nope'"),
    (["plan", "--zoo", "tiny", "--all", "--methods", "kl,bogus", "--out", "{tmp}/p.parquet"],
     "unknown method 'bogus'"),
    (["plan", "--zoo", "tiny", "--all", "--params", '{"lr": "fast"}', "--out", "{tmp}/p.parquet"],
     "parameter 'lr' must be float"),
    (["plan", "--zoo", "tiny", "--all", "--params", '{"alpha": 1}', "--out", "{tmp}/p.parquet"],
     "has no parameter 'alpha'"),
    (["plan", "--zoo", "tiny", "--pairs", "99", "--out", "{tmp}/p.parquet"], "between 1 and 6"),
    (["plan", "--zoo", "tiny", "--out", "{tmp}/p.parquet"], "give --pairs N or --all"),
    (["launch", "{tmp}/missing.parquet", "--results", "{tmp}/r"], "does not exist"),
    (["launch", "{tmp}/p.parquet", "--executor", "cloud", "--results", "{tmp}/r"],
     "unknown executor 'cloud'"),
])
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, argv, message):
    if argv[0] == "launch" and "cloud" in argv:
        main(["plan", "--zoo", "tiny", "--pairs", "1", "--out", str(tmp_path / "p.parquet")])
        capsys.readouterr()
    code, out, err = _run(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("ktbench: error: ") and message in err
    assert not (tmp_path / "r").exists()
    if argv[0] == "plan":
        assert not (tmp_path / "p.parquet").exists()


def test_unwritable_results_folder(capsys, tmp_path):
    main(["plan", "--zoo", "tiny", "--pairs", "1", "--out", str(tmp_path / "p.parquet")])
    (tmp_path / "file").write_text("")
    code, _, err = _run(capsys, "launch", str(tmp_path / "p.parquet"),
                        "--results", str(tmp_path / "file" / "results"))
    assert code == 2 and "is not writable" in err and err.count("\n") == 1


def test_plan_writes_all_pairs_times_methods(capsys, tmp_path):
    code, out, _ = _run(capsys, "plan", "--zoo", "tiny", "--all", "--methods", "kl,kl_dp",
                        "--seeds", "0,1", "--out", str(tmp_path / "p.parquet"))
    assert code == 0 and "24 transfer units (6 pairs x 2 methods x 2 seeds)" in out


def test_console_script_lists_methods():
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", "methods"], capture_output=True,
                         text=True, check=True).stdout
    for name in ("kl", "kl_dp", "kl_dp_unsup"):
        assert f"\n{name} " in "\n" + out


def _pandas_loaded(code: str) -> list[str]:
    """The lines `code` prints in a fresh interpreter, then whether it loaded pandas."""
    code += "\nimport sys\nprint('pandas' in sys.modules)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=REPO).stdout.splitlines()


def test_query_and_help_load_no_pandas(tmp_path):
    """`ktbench query` reads and prints through DuckDB and Arrow, and the parser (`--help`) is
    built from light modules: neither loads pandas (half the start-up time of a query)."""
    import pyarrow as pa
    from results import TABLES, write_part
    rows = [{"key": f"transfer-{i}", "method": "kl", "dist_delta": 0.5 * i} for i in range(3)]
    table = pa.Table.from_pylist(rows, schema=TABLES["transfer_runs"])
    write_part(tmp_path, "transfer_runs", table, "three")
    sql = "select count(*) as n, sum(dist_delta) as s from transfer_runs"
    assert _pandas_loaded(f"from benchmark.cli import main\n"
                          f"print(main(['query', '--results', {str(tmp_path)!r}, {sql!r}]))") == [
        "| n | s   |", "|---|-----|", "| 3 | 1.5 |", "0", "False"]
    assert _pandas_loaded("from benchmark.cli import main\n"
                          "for argv in (['--help'], ['plan', '--help'], ['query', '--help']):\n"
                          "    try:\n"
                          "        main(argv)\n"
                          "    except SystemExit:\n"
                          "        pass")[-1] == "False"
