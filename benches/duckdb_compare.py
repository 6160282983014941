#!/usr/bin/env python3
"""Compare our JSON -> Parquet throughput and output size with DuckDB on the same JSON.

Run `cargo bench --bench user_status_encode` first: it writes the simulator's pages and our
Parquet file to target/bench-data/user_status/ and Criterion's estimate to
target/criterion/user_status/json_to_parquet/new/estimates.json. This script converts the same
pages with DuckDB on one thread (read_json, `unnest` in the SELECT list, one nesting level per
CTE, COPY ... (FORMAT parquet, COMPRESSION zstd)), takes the best of a few runs, checks the row
count matches ours, and prints both rates, the ratio, and both file sizes.

DuckDB gets its fastest form of the query: the JSON schema is given to read_json (`columns`),
as our decoder knows it too. Left to infer it (`format = 'auto'` alone), DuckDB samples the
input first and was about 3.5x slower on these pages; that figure is printed as well.

Usage: "$(python3 tests/py/bootstrap.py)" benches/duckdb_compare.py [REPO_DIR]   (the pinned env has duckdb)
"""

import json
import os
import sys
import tempfile
import time

import duckdb

REPO = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
DATA = os.path.join(REPO, "target", "bench-data", "user_status")
ESTIMATES = os.path.join(REPO, "target", "criterion", "user_status", "json_to_parquet", "new", "estimates.json")
RUNS = int(os.environ.get("DUCKDB_RUNS", "5"))

QUERY = """
COPY (
  WITH agents AS (
    SELECT unnest(data) AS a
    FROM read_json('{pages}', format = 'auto', maximum_object_size = 268435456{columns})
  ),
  buckets AS (
    SELECT a.userId AS user_id, a.email AS email, a.firstName AS first_name,
           a.lastName AS last_name, a.customId AS custom_id,
           unnest(a.timeInterval) AS b
    FROM agents
  ),
  entries AS (
    SELECT user_id, email, first_name, last_name, custom_id,
           b.startTime AS bucket_start, b.endTime AS bucket_end,
           unnest(b.status) AS s
    FROM buckets
  )
  SELECT 'demo-account' AS account_id, user_id, email, first_name, last_name, custom_id,
         CAST(bucket_start AS TIMESTAMPTZ) AS bucket_start,
         CAST(bucket_end AS TIMESTAMPTZ) AS bucket_end,
         'PT15M' AS granularity, s.metric AS metric, s.value AS value,
         CAST(split_part(s.stats.sum, ' ', 1) AS BIGINT) AS duration_seconds,
         TIMESTAMPTZ '2024-05-02 00:00:00+00' AS exported_at
  FROM entries
) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
"""

# The page schema, as the simulator serves it (the fields our decoder reads).
COLUMNS = (
    ", columns = {hasMore: 'BOOLEAN', \"limit\": 'BIGINT', \"offset\": 'BIGINT', "
    "data: 'STRUCT(userId VARCHAR, email VARCHAR, firstName VARCHAR, lastName VARCHAR, "
    "customId VARCHAR, timeInterval STRUCT(startTime VARCHAR, endTime VARCHAR, "
    "status STRUCT(metric VARCHAR, value VARCHAR, stats STRUCT(sum VARCHAR))[])[])[]'}"
)


def best_of(con, query: str) -> float:
    best = None
    for _ in range(RUNS):
        t0 = time.perf_counter()
        con.execute(query)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best


def main() -> int:
    pages = os.path.join(DATA, "pages", "*.json")
    ours_path = os.path.join(DATA, "ours.parquet")
    rows = int(open(os.path.join(DATA, "rows.txt")).read())
    with open(ESTIMATES) as f:
        ours_ns = json.load(f)["median"]["point_estimate"]
    ours_rate = rows / (ours_ns / 1e9)

    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute("SET TimeZone = 'UTC'")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "duckdb.parquet")
        inferred = best_of(con, QUERY.format(pages=pages, out=out, columns=""))
        best = best_of(con, QUERY.format(pages=pages, out=out, columns=COLUMNS))
        duck_rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
        duck_size = os.path.getsize(out)
    ours_size = os.path.getsize(ours_path)
    if duck_rows != rows:
        print(f"ROW COUNT MISMATCH: ours {rows}, duckdb {duck_rows}", file=sys.stderr)
        return 1
    duck_rate = rows / best
    print(f"duckdb {duckdb.__version__}, threads=1, best of {RUNS}; {rows} rows")
    print(f"duckdb_inferred_schema_rows_per_s {rows / inferred:.0f}")
    print(f"json_to_parquet_rows_per_s ours={ours_rate:.0f} duckdb={duck_rate:.0f} ratio={ours_rate / duck_rate:.2f}")
    print(f"parquet_bytes ours={ours_size} duckdb={duck_size} ratio={ours_size / duck_size:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
