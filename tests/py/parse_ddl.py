"""Parse Athena DDL with sqlglot (an independent SQL parser) and print, as JSON:
- "hive", "athena": every CREATE TABLE's name, columns, partition columns and table properties,
  parsed in the Hive and Athena dialects (Athena DDL is Hive DDL);
- "views": every CREATE VIEW, parsed in the Trino and Athena dialects (Athena views are Trino
  SQL): its name, output columns, the table it reads, and how it numbers copies (the window's
  PARTITION BY and ORDER BY columns, and the column = value filter on that number).
Exits non-zero when a statement does not parse or is neither. Used by tests/athena_ddl.rs."""
import json
import re
import sys

import sqlglot
from sqlglot import exp


def describe_table(create):
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


def describe_view(create):
    select = create.expression
    inner = select.args["from_"].this
    if not isinstance(inner, exp.Subquery):
        raise SystemExit(f"view {create.this.name}: expected FROM (subquery)")
    inner = inner.this
    windows = [a for a in inner.expressions if isinstance(a, exp.Alias) and isinstance(a.this, exp.Window)]
    if len(windows) != 1 or not isinstance(windows[0].this.this, exp.RowNumber):
        raise SystemExit(f"view {create.this.name}: expected one row_number() window")
    window = windows[0].this
    where = select.args.get("where")
    condition = where.this if where else None
    if not isinstance(condition, exp.EQ):
        raise SystemExit(f"view {create.this.name}: expected WHERE column = value")
    return {
        "view": create.this.name,
        "columns": [c.alias_or_name for c in select.expressions],
        "reads": inner.args["from_"].this.name,
        "star": any(isinstance(e, exp.Star) for e in inner.expressions),
        "numbered_as": windows[0].alias,
        "partition_by": [c.name for c in window.args.get("partition_by") or []],
        "order_by": [o.this.name for o in (window.args.get("order").expressions if window.args.get("order") else [])],
        "filter": [condition.this.name, condition.expression.sql()],
    }


def statements(text):
    """The statements of the file, as text (no ';' occurs inside the generated statements)."""
    return [s.strip() for s in re.split(r";\s*$", text, flags=re.M) if s.strip() and not all(
        line.startswith("--") for line in s.strip().splitlines())]


def parse_one(sql, dialect):
    parsed = sqlglot.parse_one(sql, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
    if not isinstance(parsed, exp.Create):
        raise SystemExit(f"{dialect}: not a CREATE statement: {sql[:80]}")
    return parsed


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    out = {"hive": [], "athena": [], "views": []}
    for sql in statements(text):
        kind = parse_one(sql, "athena").kind
        if kind == "TABLE":
            for dialect in ("hive", "athena"):
                out[dialect].append(describe_table(parse_one(sql, dialect)))
        elif kind == "VIEW":
            views = [describe_view(parse_one(sql, d)) for d in ("trino", "athena")]
            if views[0] != views[1]:
                raise SystemExit(f"the Trino and Athena parses of a view differ: {views}")
            out["views"].append(views[0])
        else:
            raise SystemExit(f"neither CREATE TABLE nor CREATE VIEW: {sql[:80]}")
    json.dump(out, sys.stdout)


main()
