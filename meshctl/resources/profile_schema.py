"""The openAPIV3 schema of a ServiceProfile's spec (service_profile.SPEC_SCHEMA), apart from its parser
for length's sake. The parser takes its bounds from here, so the two cannot drift apart.
"""

from __future__ import annotations

from meshctl.resources import failure_accrual, load_balancer, openapi

DEFAULT_ROUTE_TIMEOUT_S = 10.0  # a profile route without `timeout` (Linkerd's default)
HTTP_TOKEN_PATTERN = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"  # RFC 9110 token: what a method may be
MAX_ROUTE_NAME = 253

# Conditions nest (all/any/not) but a structural schema cannot refer to itself: the schema spells out
# this many levels and keeps deeper ones as written, for the parser (which checks every level).
SCHEMA_CONDITION_LEVELS = 2


def _request_match_schema(level: int = 1) -> openapi.Schema:
    description = "A request condition: the fields set must all hold."
    if level > SCHEMA_CONDITION_LEVELS:
        return openapi.free_object(description + " Checked by `meshctl apply` at this depth.")
    nested = _request_match_schema(level + 1)
    return openapi.obj(
        description,
        {
            "method": openapi.string("The request's method.", title="an HTTP method such as GET",
                                     pattern=HTTP_TOKEN_PATTERN, example="GET"),
            "pathRegex": openapi.string(
                "A regular expression (RE2 syntax) the whole path must match.",
                title="a regular expression matched against the whole path", example="/books/[0-9]+"),
            "all": openapi.array("Conditions that must all hold.", nested, min_items=1,
                                 title="a non-empty list of conditions"),
            "any": openapi.array("Conditions one of which must hold.", nested, min_items=1,
                                 title="a non-empty list of conditions"),
            "not": nested | {"description": "A condition that must not hold."},
        },
        min_properties=1,
    )  # fmt: skip


def _response_match_schema(level: int = 1) -> openapi.Schema:
    description = "A response condition: the fields set must all hold."
    if level > SCHEMA_CONDITION_LEVELS:
        return openapi.free_object(description + " Checked by `meshctl apply` at this depth.")
    nested = _response_match_schema(level + 1)
    status = openapi.obj(
        "A range of HTTP status codes, both ends included.",
        {
            "min": openapi.integer("The lowest status (default 100).", minimum=100, maximum=599, example=500),
            "max": openapi.integer("The highest status (default 599).", minimum=100, maximum=599, example=599),
        },
        min_properties=1, title="a mapping with min and/or max",
    )  # fmt: skip
    return openapi.obj(
        description,
        {
            "status": status,
            "all": openapi.array("Conditions that must all hold.", nested, min_items=1,
                                 title="a non-empty list of conditions"),
            "any": openapi.array("Conditions one of which must hold.", nested, min_items=1,
                                 title="a non-empty list of conditions"),
            "not": nested | {"description": "A condition that must not hold."},
        },
        min_properties=1,
    )  # fmt: skip


_ROUTE_SCHEMA = openapi.obj(
    "One kind of request of the service, named in metrics, `routes` and `tap`.",
    {
        "name": openapi.string("The route's name, as metrics and `routes` show it.",
                               title='a route name such as "GET /books/{id}"', max_length=MAX_ROUTE_NAME,
                               example="GET /books/{id}"),
        "condition": _request_match_schema() | {"description": "The request condition of the route."},
        "responseClasses": openapi.array(
            "How responses are classified; the first class whose condition holds decides (default: 5xx fail).",
            openapi.obj(
                "A class of responses.",
                {
                    "condition": _response_match_schema() | {"description": "The response condition of the class."},
                    "isFailure": openapi.boolean("Whether these responses count as failures."),
                },
                required=("condition",),
            ),
        ),
        "timeout": openapi.duration(f"How long a request may take, retries included (default "
                                    f"{DEFAULT_ROUTE_TIMEOUT_S:g}s).", example="300ms"),
        "isRetryable": openapi.boolean("Whether a failed request may be sent again (repeating it is safe)."),
    },
    required=("name", "condition"),
)  # fmt: skip

SPEC_SCHEMA = openapi.obj(
    "The routes of one service, with timeouts, retries and failure classification (Linkerd's shape).",
    {
        "routes": openapi.array("The service's routes; a request takes the first whose condition holds.",
                                _ROUTE_SCHEMA),
        "retryBudget": openapi.obj(
            "How many retries the service's clients may add (default: 20 % plus 10 per second over 10s).",
            {
                "retryRatio": openapi.number("The retries allowed per original request, e.g. 0.2.", minimum=0,
                                             example=0.2),
                "minRetriesPerSecond": openapi.integer("The retries per second allowed whatever the ratio.",
                                                       minimum=0, example=10),
                "ttl": openapi.duration("The window the ratio is computed over.", example="10s"),
            },
            required=("retryRatio", "minRetriesPerSecond", "ttl"),
        ),
        "failureAccrual": failure_accrual.SCHEMA,
        "loadBalancer": load_balancer.SCHEMA,
    },
)  # fmt: skip
