"""`views.sql` beside this module: the analysis's views over the results views (`runs`,
`single_runs`), the one definition of what a transfer run is to the tables, including how a
compat mode labels its method.

The SQL tables (`analysis/sql/`) read these views, never `transfer_runs` itself, so the rule
lives in one place; `bind_views(con)` creates them on a connection whose results views are bound
(`results.connect`), and `tables_in(sql)` names the results tables a statement reads through
them too. Light at import (no pandas).
"""
import functools
import re
from pathlib import Path

import duckdb

from results.views import tables_in as results_tables_in

ANALYSIS_VIEWS_SQL = Path(__file__).with_name("views.sql")


@functools.cache
def views_sql() -> str:
    return ANALYSIS_VIEWS_SQL.read_text()


@functools.cache
def source_tables() -> tuple[str, ...]:
    """The results tables the analysis views read (their SQL without its comments)."""
    return tuple(results_tables_in(re.sub(r"--[^\n]*", "", views_sql())))


@functools.cache
def view_names() -> tuple[str, ...]:
    """The views `views.sql` creates."""
    return tuple(re.findall(r"^CREATE OR REPLACE VIEW (\w+)", views_sql(), re.MULTILINE))


@functools.cache
def _view_words() -> re.Pattern:
    return re.compile(rf"\b({'|'.join(view_names())})\b", re.IGNORECASE)


def tables_in(sql: str) -> list[str]:
    """The results tables `sql` may read: those it names, and those behind every analysis view
    it names (a word that is only a column alias binds one view too many, never one too few)."""
    found = results_tables_in(sql)
    if _view_words().search(sql):
        found += [t for t in source_tables() if t not in found]
    return found


def bind_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create the analysis views in `con`, if the results views they read are bound there (a
    connection bound to other tables only is left as it is)."""
    bound = {name for (name,) in con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}
    if set(source_tables()) <= bound:
        con.execute(views_sql())
