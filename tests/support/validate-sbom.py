#!/usr/bin/env python3
"""Validates an SBOM against its format's official JSON schema.

    validate-sbom.py SCHEMA_DIR spdx|cyclonedx FILE

SCHEMA_DIR is testdata/sbom-schemas. Every schema there is registered under
its `$id` and under the URI its neighbours' relative `$ref`s resolve to, so
nothing is fetched. Prints each error (path and message) and exits 1 when
the document is invalid, 2 when jsonschema is missing.
"""
import json
import pathlib
import sys

try:
    import jsonschema
except ImportError:
    sys.stderr.write(
        "the jsonschema Python package is missing: apt-get install python3-jsonschema "
        "(or python3 -m pip install jsonschema)\n"
    )
    sys.exit(2)

MAIN = {"spdx": "spdx-2.3.schema.json", "cyclonedx": "bom-1.5.SNAPSHOT.schema.json"}


def schemas(folder):
    """(URI, schema) for every schema, under its `$id` and its neighbours' URI."""
    for f in sorted(folder.glob("*.json")):
        schema = json.loads(f.read_text())
        yield schema.get("$id", f.name), schema
        yield "http://cyclonedx.org/schema/" + f.name, schema


def validator_for(folder, schema):
    cls = jsonschema.validators.validator_for(schema)
    try:
        # jsonschema 4.18 and later resolve references through `referencing`.
        from referencing import Registry, Resource
    except ImportError:
        # Older ones (Debian 12's 4.10) through a RefResolver with a store.
        resolver = jsonschema.RefResolver.from_schema(schema, store=dict(schemas(folder)))
        return cls(schema, resolver=resolver, format_checker=cls.FORMAT_CHECKER)
    registry = Registry()
    for uri, s in schemas(folder):
        registry = registry.with_resource(uri, Resource.from_contents(s))
    return cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)


def main():
    folder, fmt, path = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    schema = json.loads((folder / MAIN[fmt]).read_text())
    validator = validator_for(folder, schema)
    doc = json.loads(pathlib.Path(path).read_text())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    for e in errors:
        where = "/".join(str(p) for p in e.absolute_path) or "(document)"
        print(f"{where}: {e.message}")
    sys.exit(1 if errors else 0)


main()
