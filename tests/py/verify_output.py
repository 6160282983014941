"""Verify exported output with real engines (run by tests/engines.rs).

Usage: verify_output.py SPEC.json

SPEC: {"local": DIR, "expected": {dataset: {"rows": N, "sums": {column: S}}},
       "s3": null | {"endpoint": "127.0.0.1:PORT", "bucket": B, "prefix": P},
       "markdown": [FILE, ...]}

- pyarrow.dataset reads every dataset (Hive partitioning) locally and, when "s3" is given,
  through pyarrow.fs.S3FileSystem: every timestamp column must be timestamp[ms, tz=UTC], the
  partition columns (account_id, dt, and bot_id for intent_realtime) must be recognised, and
  row counts and column sums must equal the expected figures (computed by the caller from the
  simulator's generator).
- DuckDB runs every ```sql duckdb-check block of the markdown files, with the path 'out/' (as a
  quoted string prefix) replaced by the local output directory. No such block is an error.
Exits non-zero with a message on the first failure.
"""

import json
import re
import sys

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

PARTITIONS = {
    "user_status": ["account_id", "dt"],
    "intent_realtime": ["account_id", "bot_id", "dt"],
}
UTC_MS = pa.timestamp("ms", tz="UTC")


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check_dataset(where, dataset, path, filesystem, expected):
    data = ds.dataset(path, format="parquet", partitioning="hive", filesystem=filesystem)
    schema = data.schema
    part_names = data.partitioning.schema.names if data.partitioning else []
    for col in PARTITIONS[dataset]:
        if col not in part_names:
            fail(f"{where} {dataset}: partition column {col} not recognised (got {part_names})")
    timestamps = [f for f in schema if pa.types.is_timestamp(f.type)]
    if not timestamps:
        fail(f"{where} {dataset}: no timestamp column in {schema}")
    for f in timestamps:
        if f.type != UTC_MS:
            fail(f"{where} {dataset}: column {f.name} is {f.type}, expected {UTC_MS}")
    table = data.to_table()
    if table.num_rows != expected["rows"]:
        fail(f"{where} {dataset}: {table.num_rows} rows, expected {expected['rows']}")
    for col, want in expected.get("sums", {}).items():
        got = pc.sum(table.column(col)).as_py() or 0
        if got != want:
            fail(f"{where} {dataset}: sum({col}) = {got}, expected {want}")
    dts = set(table.column("dt").to_pylist())
    print(
        f"ok {where} {dataset}: {table.num_rows} rows, {len(timestamps)} UTC ms timestamp "
        f"column(s), partitions {part_names}, {len(dts)} day(s)"
    )


def sql_blocks(markdown_files):
    blocks = []
    for name in markdown_files:
        text = open(name, encoding="utf-8").read()
        for m in re.finditer(r"^```sql duckdb-check[ \t]*\n(.*?)^```", text, re.S | re.M):
            blocks.append((name, m.group(1)))
    return blocks


def main():
    spec = json.load(open(sys.argv[1], encoding="utf-8"))
    local = spec["local"].rstrip("/")
    for dataset, expected in spec["expected"].items():
        check_dataset("local", dataset, f"{local}/{dataset}", None, expected)
    s3 = spec.get("s3")
    if s3:
        fs = pafs.S3FileSystem(
            endpoint_override=s3["endpoint"],
            scheme="http",
            access_key="test",
            secret_key="test",
            region="us-east-1",
        )
        base = f"{s3['bucket']}/{s3['prefix']}".rstrip("/")
        for dataset, expected in spec["expected"].items():
            check_dataset("s3", dataset, f"{base}/{dataset}", fs, expected)

    blocks = sql_blocks(spec["markdown"])
    if not blocks:
        fail(f"no ```sql duckdb-check blocks in {spec['markdown']}")
    con = duckdb.connect()
    for i, (name, sql) in enumerate(blocks, 1):
        sql = re.sub(r"(['\"])out/", lambda m: f"{m.group(1)}{local}/", sql)
        try:
            # Arrow result: no pytz needed for TIMESTAMPTZ columns.
            result = con.execute(sql)
            table = result.to_arrow_table() if result.description else None
        except Exception as e:  # noqa: BLE001 - report any engine error with the block
            fail(f"duckdb block {i} of {name} failed: {e}\n{sql}")
        count = table.num_rows if table is not None else 0
        print(f"ok duckdb block {i} of {name}: {count} row(s)")
        if table is not None:
            for row in table.slice(0, 3).to_pylist():
                print(f"   {row}")


if __name__ == "__main__":
    main()
