"""Validates SBOMs Sealwright wrote with the formats' own tools (crates/cli/tests/sbom.rs):
CycloneDX with cyclonedx-python-lib's strict JSON-schema validator for 1.6 and its object
model; SPDX 2.3 with spdx-tools' parser and full document validator. Prints one JSON line
with what was read; exits non-zero on any error.

usage: sbom_validate.py cyclonedx|spdx FILE
"""
import json
import sys


def cyclonedx(path):
    from cyclonedx.model.bom import Bom
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = open(path).read()
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise SystemExit("CycloneDX 1.6 schema: %s" % error)
    bom = Bom.from_json(json.loads(text))
    purls = sorted(str(c.purl) for c in bom.components if c.purl is not None)
    return {"components": len(bom.components), "purls": purls}


def spdx(path):
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    document = parse_file(path)
    messages = validate_full_spdx_document(document)
    if messages:
        raise SystemExit("SPDX 2.3: " + "; ".join(m.validation_message for m in messages))
    purls = sorted(
        ref.locator for p in document.packages for ref in p.external_references if ref.reference_type == "purl"
    )
    return {"packages": len(document.packages), "purls": purls}


kind, path = sys.argv[1:]
print(json.dumps({"ok": True, **(cyclonedx(path) if kind == "cyclonedx" else spdx(path))}))
