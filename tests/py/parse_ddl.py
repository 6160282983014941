"""Parse Athena DDL with sqlglot's Hive and Athena dialects (an independent SQL parser) and
print, as JSON, every CREATE TABLE's name, columns, partition columns and table properties.
Exits non-zero when a statement does not parse. Used by tests/athena_ddl.rs."""
import json
import sys

import sqlglot
from sqlglot import exp


def describe(statement):
    create = statement if isinstance(statement, exp.Create) else None
    if create is None or create.kind != "TABLE":
        raise SystemExit(f"not a CREATE TABLE: {statement.sql()[:80]}")
    schema = create.this
    table = schema.this.name
    columns = [c.name for c in schema.expressions if isinstance(c, exp.ColumnDef)]
    props = create.args.get("properties")
    partitions, tblprops = [], {}
    for p in (props.expressions if props else []):
        if isinstance(p, exp.PartitionedByProperty):
            partitions = [c.name for c in p.this.expressions]
        elif isinstance(p, exp.Property):
            tblprops[p.name] = p.text("value")
    return {"table": table, "columns": columns, "partitions": partitions, "properties": tblprops}


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    out = {}
    for dialect in ("hive", "athena"):
        statements = sqlglot.parse(text, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
        out[dialect] = [describe(s) for s in statements if s is not None]
    json.dump(out, sys.stdout)


main()
