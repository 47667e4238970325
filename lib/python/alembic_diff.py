# Autogenerate diff between an app's models and its migrated database, as JSON (one line, prefixed LLC_OPS_DIFF).
# Alembic < 1.9 has no `alembic check`: this runs the app's own env.py (so its URL, target_metadata,
# include_object and compare_* options apply) with a callback that calls alembic.autogenerate.compare_metadata.
# Usage: DATABASE_URL=... python3 alembic_diff.py path/to/alembic.ini   (run in the app directory)
import json
import os
import sys

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory

MARKER = "LLC_OPS_DIFF "


def name_of(obj):
    return getattr(obj, "name", None) or str(obj)


def table_of(obj):
    table = getattr(obj, "table", None)
    if table is None:
        table = getattr(obj, "parent", None)
    return getattr(table, "name", None)


def describe(diff):
    """One difference as {op, table, column, name, text}; `text` says which side has what."""
    if isinstance(diff, list):
        # modify_* differences come as a list of tuples about one column.
        return [describe(d) for d in diff]
    op = diff[0]
    if op in ("add_table", "remove_table"):
        t = diff[1]
        side = "in the models, not created by the migrations" if op == "add_table" else "in the migrated schema, not in the models"
        return {"op": op, "table": t.name, "column": None, "name": t.name, "text": f"table {t.name}: {side}"}
    if op in ("add_column", "remove_column"):
        _, _schema, tname, col = diff
        side = "in the models, not created by the migrations" if op == "add_column" else "in the migrated schema, not in the models"
        return {"op": op, "table": tname, "column": col.name, "name": col.name, "text": f"column {tname}.{col.name}: {side}"}
    if op.startswith("modify_"):
        _, _schema, tname, cname, _existing, old, new = diff
        what = op[len("modify_"):]
        return {"op": op, "table": tname, "column": cname, "name": cname, "text": f"column {tname}.{cname}: {what} is {old!r} in the database, {new!r} in the models"}
    obj = diff[1] if len(diff) > 1 else None
    side = "in the models, not in the migrated schema" if op.startswith("add_") else "in the migrated schema, not in the models"
    kind = op.split("_", 1)[1] if "_" in op else op
    table = table_of(obj)
    name = name_of(obj)
    where = f" on {table}" if table else ""
    return {"op": op, "table": table, "column": None, "name": name, "text": f"{kind} {name}{where}: {side}"}


def flatten(items):
    for d in items:
        if isinstance(d, list):
            yield from flatten(d)
        else:
            yield d


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: alembic_diff.py ALEMBIC_INI", file=sys.stderr)
        return 2
    # `python -m alembic` has the working directory on sys.path; a script run by path does not.
    sys.path.insert(0, os.getcwd())
    config = Config(sys.argv[1])
    script = ScriptDirectory.from_config(config)
    result = {"heads": list(script.get_heads()), "current": [], "diffs": [], "error": None}

    def compare(_rev, context):
        result["current"] = list(context.get_current_heads())
        metadata = context.opts.get("target_metadata")
        if metadata is None:
            result["error"] = "env.py sets no target_metadata: nothing to compare the database with"
            return []
        if isinstance(metadata, (list, tuple)):
            diffs = [d for m in metadata for d in compare_metadata(context, m)]
        else:
            diffs = compare_metadata(context, metadata)
        result["diffs"] = list(flatten(describe(d) for d in diffs))
        return []

    with EnvironmentContext(config, script, fn=compare, dont_mutate=True):
        script.run_env()
    print(MARKER + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
