"""Check the generated `intent_realtime` views on a partition caught in the middle of a merge
(run by tests/merge_window.rs).

Usage: check_merge_window.py SPEC.json
SPEC: {"duckdb_sql": the DuckDB views of the table (from `schema --format duckdb`),
       "athena_sql": the Athena views (Trino SQL, from `schema --format athena`),
       "expected": the session ids the partition must hold, sorted}

- `intent_realtime_files` (every row of every file) must hold more rows than sessions: the
  folder really is between the two steps of a merge; its distinct rows must be the sessions
  (copies are equal).
- The DuckDB view `intent_realtime` must return each expected session exactly once.
- The Athena view, translated from the Athena dialect to DuckDB's by sqlglot (an independent
  SQL translator), must do the same over the same files and return the same rows.
Exits non-zero with a message on the first failure."""
import json
import sys

import duckdb
import sqlglot


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def ids(con, relation):
    return sorted(r[0] for r in con.execute(f"SELECT session_id FROM {relation}").fetchall())


def rows(con, relation):
    cols = "session_id, user_id, channel, intents, start_time, end_time, exported_at, account_id, bot_id, CAST(dt AS VARCHAR)"
    return sorted(con.execute(f"SELECT {cols} FROM {relation}").fetchall(), key=repr)


def main():
    spec = json.load(open(sys.argv[1], encoding="utf-8"))
    expected = spec["expected"]
    con = duckdb.connect()
    con.execute(spec["duckdb_sql"])

    raw = ids(con, "intent_realtime_files")
    if len(raw) <= len(expected):
        fail(f"the folder holds {len(raw)} rows for {len(expected)} sessions: not mid-merge")
    distinct = con.execute("SELECT count(*) FROM (SELECT DISTINCT * FROM intent_realtime_files)").fetchone()[0]
    if distinct != len(expected) or sorted(set(raw)) != expected:
        fail(f"the files hold {distinct} distinct rows / other sessions than expected")
    print(f"ok files: {len(raw)} rows, {distinct} distinct, {len(expected)} sessions")

    duck = ids(con, "intent_realtime")
    if duck != expected:
        fail(f"DuckDB view: {len(duck)} rows, {len(set(duck))} distinct; expected each of {len(expected)} once")
    duck_rows = rows(con, "intent_realtime")
    print(f"ok DuckDB view intent_realtime: each of {len(duck)} sessions once")

    statements = [s for s in sqlglot.parse(spec["athena_sql"], read="athena") if s is not None]
    if not statements:
        fail("no Athena view to check")
    con.execute("DROP VIEW intent_realtime")
    for statement in statements:
        con.execute(statement.sql(dialect="duckdb"))
    athena = ids(con, "intent_realtime")
    if athena != expected:
        fail(f"Athena view (as DuckDB): {len(athena)} rows, {len(set(athena))} distinct; expected each of {len(expected)} once")
    if rows(con, "intent_realtime") != duck_rows:
        fail("the Athena view returns other rows than the DuckDB view")
    print(f"ok Athena view intent_realtime (translated): each of {len(athena)} sessions once, same rows")


main()
