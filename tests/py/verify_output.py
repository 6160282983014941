"""Verify exported output with real engines (run by tests/engines.rs).

Usage: verify_output.py SPEC.json

SPEC: {"local": DIR,
       "tables": {table: {"partitions": [COLUMN, ...], "rows": N, "sums": {column: S}}},
       "s3": null | {"endpoint": "127.0.0.1:PORT", "bucket": B, "prefix": P},
       "ids": null | {"account_id": A, "bot_id": B},
       "infer_hive": true | false,
       "markdown": [FILE, ...],
       "queries": [{"dataset": D, "about": TEXT, "sql": SQL with {out}}, ...],
       "names_not_ids": {COLUMN: ID_PREFIX, ...}}

The caller (tests/engines.rs) lists every table of the dataset registry with the partition
columns its layout declares; this script names no dataset.
- The markdown's ```python pyarrow-check block (exactly one) must define
  open_dataset(root, name, filesystem=None); it reads every table locally and, when "s3" is
  given, through pyarrow.fs.S3FileSystem: every timestamp column must be timestamp[ms, tz=UTC],
  the table's partition columns must be recognised (ids as strings, dt as a date), and row
  counts and column sums must equal the expected figures. With "infer_hive", plain
  partitioning="hive" (type inference) must recognise the partition columns too.
- DuckDB runs every ```sql duckdb-check block of the markdown files, with the path 'out'
  (as a quoted string or a quoted prefix) replaced by the local output directory. A block whose
  last statement is a SELECT/WITH must return at least one row. Then, through the views the
  blocks created, DuckDB's row counts and sums must equal the expected figures, `dt` must be a
  DATE and the ids VARCHAR with exactly the expected values. A block result with a column of
  "names_not_ids" (an id joined to its name) must hold no value starting with that column's
  id prefix: every id found its name, none fell back to the id.
- DuckDB runs every query of "queries" (a dataset's demo queries) with {out} replaced by the
  local output directory: each must return at least one row.
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

UTC_MS = pa.timestamp("ms", tz="UTC")


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check_table(where, dataset, data, expected, ids):
    schema = data.schema
    part = data.partitioning.schema if data.partitioning else pa.schema([])
    for col in expected["partitions"]:
        if col not in part.names:
            fail(f"{where} {dataset}: partition column {col} not recognised (got {part.names})")
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
    for col, want in (ids or {}).items():
        if col in expected["partitions"]:
            got = set(table.column(col).to_pylist())
            if got != {want}:
                fail(f"{where} {dataset}: {col} values {got}, expected {{{want!r}}}")
    dts = set(table.column(expected["partitions"][-1]).to_pylist())
    print(
        f"ok {where} {dataset}: {table.num_rows} rows, {len(timestamps)} UTC ms timestamp "
        f"column(s), partitions {part.names}, {len(dts)} day(s)"
    )
    return part


def check_dataset(where, dataset, root, filesystem, expected, ids, open_dataset, infer_hive):
    part = check_table(where, dataset, open_dataset(root, dataset, filesystem), expected, ids)
    for col in expected["partitions"]:
        want = pa.date32() if col == expected["partitions"][-1] else pa.string()
        if part.field(col).type != want:
            fail(f"{where} {dataset}: partition {col} is {part.field(col).type}, expected {want}")
    if infer_hive:
        inferred = ds.dataset(
            f"{root}/{dataset}", format="parquet", partitioning="hive", filesystem=filesystem
        )
        check_table(f"{where} (inferred hive)", dataset, inferred, expected, ids)


def code_blocks(markdown_files, tag):
    blocks = []
    for name in markdown_files:
        text = open(name, encoding="utf-8").read()
        pattern = rf"^```{re.escape(tag)}[ \t]*\n(.*?)^```"
        for m in re.finditer(pattern, text, re.S | re.M):
            blocks.append((name, m.group(1)))
    return blocks


def localize(code, local):
    """Points the markdown's 'out' directory (a quoted 'out' or 'out/...') at `local`."""
    return re.sub(r"(['\"])out(?=[/'\"])", lambda m: f"{m.group(1)}{local}", code)


def load_open_dataset(markdown, local):
    blocks = code_blocks(markdown, "python pyarrow-check")
    if len(blocks) != 1:
        fail(f"expected exactly one ```python pyarrow-check block in {markdown}, found {len(blocks)}")
    name, code = blocks[0]
    namespace = {}
    try:
        exec(compile(localize(code, local), f"{name} (pyarrow-check)", "exec"), namespace)
    except Exception as e:  # noqa: BLE001 - report any error with the block
        fail(f"the pyarrow-check block of {name} failed: {e!r}")
    if "open_dataset" not in namespace:
        fail(f"the pyarrow-check block of {name} must define open_dataset(root, name, filesystem=None)")
    print(f"ok pyarrow-check block of {name}")
    return namespace["open_dataset"]


def last_statement_is_query(sql):
    statements = [s.strip() for s in sql.split(";") if s.strip()]
    lines = [l for l in statements[-1].splitlines() if not l.strip().startswith("--")] if statements else []
    head = " ".join(lines).lstrip().upper()
    return head.startswith("SELECT") or head.startswith("WITH")


def check_duckdb(spec, local):
    blocks = code_blocks(spec["markdown"], "sql duckdb-check")
    if not blocks:
        fail(f"no ```sql duckdb-check blocks in {spec['markdown']}")
    con = duckdb.connect()
    for i, (name, sql) in enumerate(blocks, 1):
        sql = localize(sql, local)
        try:
            # Arrow result: no pytz needed for TIMESTAMPTZ columns.
            result = con.execute(sql)
            table = result.to_arrow_table() if result.description else None
        except Exception as e:  # noqa: BLE001 - report any engine error with the block
            fail(f"duckdb block {i} of {name} failed: {e}\n{sql}")
        count = table.num_rows if table is not None else 0
        if last_statement_is_query(sql) and count == 0:
            fail(f"duckdb block {i} of {name} returned no rows:\n{sql}")
        print(f"ok duckdb block {i} of {name}: {count} row(s)")
        for col, prefix in (spec.get("names_not_ids") or {}).items():
            if table is not None and col in table.column_names:
                ids = [v for v in table.column(col).to_pylist() if str(v).startswith(prefix)]
                if ids:
                    fail(f"duckdb block {i} of {name}: {col} fell back to ids {ids[:3]}:\n{sql}")
        if table is not None:
            for row in table.slice(0, 3).to_pylist():
                print(f"   {row}")

    # The views the blocks created see exactly the exported rows, with the documented types.
    ids = spec.get("ids") or {}
    for dataset, expected in spec["tables"].items():
        sums = list(expected.get("sums", {}).items())
        select = ", ".join(["count(*)"] + [f"sum({col})" for col, _ in sums])
        got = con.execute(f"SELECT {select} FROM {dataset}").fetchone()
        want = (expected["rows"], *[s for _, s in sums])
        if tuple(got) != want:
            fail(f"duckdb {dataset}: (count, sums) = {got}, expected {want}")
        types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {dataset})").fetchall())
        for col in expected["partitions"]:
            want_type = "DATE" if col == expected["partitions"][-1] else "VARCHAR"
            if types.get(col) != want_type:
                fail(f"duckdb {dataset}: {col} is {types.get(col)}, expected {want_type}")
        for col, want_id in ids.items():
            if col in expected["partitions"]:
                values = {r[0] for r in con.execute(f"SELECT DISTINCT {col} FROM {dataset}").fetchall()}
                if values != {want_id}:
                    fail(f"duckdb {dataset}: {col} values {values}, expected {{{want_id!r}}}")
        print(f"ok duckdb view {dataset}: (count, sums) = {tuple(got)}, partition types as documented")

    for q in spec.get("queries", []):
        sql = q["sql"].replace("{out}", local)
        try:
            table = con.execute(sql).to_arrow_table()
        except Exception as e:  # noqa: BLE001 - report any engine error with the query
            fail(f"the demo query of {q['dataset']} ({q['about']}) failed: {e}\n{sql}")
        if table.num_rows == 0:
            fail(f"the demo query of {q['dataset']} ({q['about']}) returned no rows:\n{sql}")
        print(f"ok demo query of {q['dataset']}: {q['about']}: {table.num_rows} row(s)")


def main():
    spec = json.load(open(sys.argv[1], encoding="utf-8"))
    local = spec["local"].rstrip("/")
    ids = spec.get("ids")
    infer = spec.get("infer_hive", True)
    open_dataset = load_open_dataset(spec["markdown"], local)
    for dataset, expected in spec["tables"].items():
        check_dataset("local", dataset, local, None, expected, ids, open_dataset, infer)
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
        for dataset, expected in spec["tables"].items():
            check_dataset("s3", dataset, base, fs, expected, ids, open_dataset, infer)
    check_duckdb(spec, local)


if __name__ == "__main__":
    main()
