"""The OpenAPI 3 description of the relay, built from the app's routes and the marshmallow schemas.

Each view documents its operations as YAML after `---` in its docstring, naming the marshmallow
schemas that validate or dump its bodies; apispec turns those schemas into JSON Schema. What every
operation shares (the error body, path parameters, the request id header) is added here once.
"""

from __future__ import annotations

import copy
import datetime
import re
from collections.abc import Callable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec_webframeworks.flask import FlaskPlugin
from flask import Flask
from marshmallow import fields, validate

from app.requestid import SANE_REQUEST_ID
from app.schemas import contractfields
from app.schemas.carecycle import CareCycleRecordSchema
from app.schemas.leads import record_fields
from app.schemas.responses import (
    BulkAcceptedSchema,
    BulkSubmissionSchema,
    ErrorSchema,
    LeadAcceptedSchema,
)

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1.0.0"
UNDOCUMENTED_ENDPOINTS = frozenset({"static"})
_PATH_PARAMETER = re.compile(r"{([^}]+)}")
REQUEST_ID_HEADER = {
    "X-Request-ID": {
        "description": f"The request's id: the one the request sent when it is {SANE_REQUEST_ID}, else one made.",
        "schema": {"type": "string"},
    }
}

RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "Seconds to wait before sending the request again.", "schema": {"type": "integer"}}
}
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}

UNAUTHORIZED_RESPONSE = {
    "description": "No credentials, or none the relay knows.",
    "headers": {"WWW-Authenticate": {"description": 'Bearer realm="leadrelay"', "schema": {"type": "string"}}},
}


# The secrets a request may carry: a source's key on intake, an ops token everywhere else.
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "sourceKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key", "description": "A source's API key (intake)."},
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A source's API key on intake; an ops token (`LEADRELAY_OPS_TOKENS`) on status, "
        "operations and metrics.",
    },
    "opsToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Ops-Token",
        "description": "An ops token (`LEADRELAY_OPS_TOKENS`) in a header of its own, for a client whose "
        "`Authorization` header a proxy in front of the relay takes for itself.",
    },
}


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of every route of `app`."""
    marshmallow_plugin = MarshmallowPlugin()
    spec = APISpec(
        title="leadrelay",
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[FlaskPlugin(), marshmallow_plugin],
        info={
            "description": "Takes sales leads from forms, Meta and Google lead ads and partner systems, and "
            "delivers them to careCycle in batches within its rate limit. Every error answers "
            '`{"error": {"code", "message", "fields"}}`.'
        },
    )
    marshmallow_plugin.converter.add_attribute_function(contract_field_properties)  # type: ignore[union-attr]
    marshmallow_plugin.converter.add_attribute_function(enum_choice_properties)  # type: ignore[union-attr]
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, dict(scheme))  # a copy: the document is the caller's to change
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema("LeadSubmission", component=lead_submission_schema())
    # Referenced by name from anyOf lists in view docs, so registered up front.
    for name, schema in (
        ("CareCycleRecord", CareCycleRecordSchema),
        ("BulkSubmission", BulkSubmissionSchema),
        ("LeadAccepted", LeadAcceptedSchema),
        ("BulkAccepted", BulkAcceptedSchema),
    ):
        spec.components.schema(name, schema=schema)
    with app.test_request_context():
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if rule.endpoint not in UNDOCUMENTED_ENDPOINTS:
                spec.path(view=app.view_functions[rule.endpoint], app=app)
    document = spec.to_dict()
    for path, operations in document["paths"].items():
        for operation in operations.values():
            _complete(path, operation)
    return document


def lead_submission_schema() -> dict[str, Any]:
    """One lead as `POST /v1/leads` takes it: careCycle's field names, each described by what its normalizing
    field expects (careCycle's own formats are stricter: `CareCycleRecord`), and any other field besides."""
    properties: dict[str, Any] = {
        name: {"description": f"expected {field.expected}"}
        for name, field in record_fields(datetime.date.today).items()
    }
    properties["customFields"] = {
        "description": "careCycle's customFields (a list of {fieldKey, value} items, or a plain {key: value} object), "
        "merged with the lead's unmapped fields and the source's static ones"
    }
    return {
        "type": "object",
        "description": "One lead: careCycle's field names (below) or common aliases (`phone`, `first_name`, `zip`, "
        "`full_name`, `dob`, ...), values in common spellings, each normalized to the form careCycle takes "
        "(`CareCycleRecord`). The phone is required, and a ZIP or a timezone (derived from the phone's area code "
        "when it names one). Any other field becomes a customField; `sourceId` and `leadCost` come from the "
        "source's configuration and are dropped with a warning when sent.",
        "properties": properties,
        "additionalProperties": True,
    }


def contract_field_properties(converter: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    """JSON Schema of the careCycle contract's own field classes (apispec knows only marshmallow's)."""
    for kind, describe in _CONTRACT_FIELDS:
        if isinstance(field, kind):
            return describe(field)
    return {}


def enum_choice_properties(converter: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    """An enum field narrowed by a `OneOf` validator lists only the members it takes: apispec lists every member
    of the enum, so a retry filter showed statuses that are refused (422) as if they were accepted."""
    if not isinstance(field, fields.Enum) or not field.by_value:
        return {}
    allowed = [list(v.choices) for v in field.validators if isinstance(v, validate.OneOf)]
    if not allowed:
        return {}
    first, *others = allowed  # in the validator's order, the one its refusal names them in
    return {"enum": [member.value for member in first if all(member in choices for choices in others)]}


def _string_properties(field: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"type": "string"}
    if field.max_length is not None:
        found["maxLength"] = field.max_length
    if field.min_length:
        found["minLength"] = field.min_length
    if field.pattern is not None:
        found["pattern"] = f"^(?:{field.pattern.pattern})$"  # the contract's patterns must match whole values
    return found


_CONTRACT_FIELDS: tuple[tuple[type, Callable[[Any], dict[str, Any]]], ...] = (
    (contractfields.ContractString, _string_properties),
    (contractfields.EnumString, lambda f: {"type": "string", "enum": list(f.choices)}),
    (
        contractfields.Timezone,
        lambda f: {"type": "string", "description": "An IANA time zone name, or EST, CST, MST or PST."},
    ),
    (contractfields.Int32, lambda f: {"type": "integer", "format": "int32"}),
    (contractfields.StrictBoolean, lambda f: {"type": "boolean"}),
    (contractfields.NonNegativeNumber, lambda f: {"type": "number", "minimum": 0}),
    (
        contractfields.CustomFieldValue,
        lambda f: {"description": "A string, number, boolean, list of strings, or null."},
    ),
    (
        contractfields.ContractList,
        lambda f: {"maxItems": f.max_length, **({"minItems": f.min_length} if f.min_length else {})},
    ),
)


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, flask-style path) of every operation in a spec, to compare with the url map."""
    found = set()
    for path, operations in document["paths"].items():
        flask_path = _PATH_PARAMETER.sub(lambda m: f"<{m.group(1)}>", path)
        found |= {(method.upper(), flask_path) for method in operations if method != "parameters"}
    return found


def _complete(path: str, operation: dict[str, Any]) -> None:
    """Add what every operation shares: path parameters, the error responses' body, the request id header."""
    parameters = operation.setdefault("parameters", [])
    declared = {(p.get("in"), p.get("name")) for p in parameters}
    for name in _PATH_PARAMETER.findall(path):
        if ("path", name) not in declared:
            parameters.append({"in": "path", "name": name, "required": True, "schema": {"type": "string"}})
    if not parameters:
        del operation["parameters"]
    responses = operation.setdefault("responses", {})
    if operation.get("security"):
        responses.setdefault("401", copy.deepcopy(UNAUTHORIZED_RESPONSE))
    responses.setdefault("default", {"description": "An error, in the one error shape."})
    for status, response in responses.items():
        if status == "default" or str(status)[0] in "45":  # a view documents an error by its cause alone
            response.setdefault("content", copy.deepcopy(_ERROR_CONTENT))
        if str(status) == "503" and response["content"] == _ERROR_CONTENT:  # UnavailableError's, not /readyz's
            response.setdefault("headers", {}).update(RETRY_AFTER_HEADER)
    for response in responses.values():
        response.setdefault("headers", {}).update(REQUEST_ID_HEADER)
