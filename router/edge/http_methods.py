"""Only queries over GET: a mutation must be a POST (Apollo's allow_only_http_post_mutations).

GET requests may be cached, prefetched or replayed by intermediaries; side effects belong to
POST. The check needs the operation's type, so it parses the document; a document that does not
parse, or names no single operation, is left for the gateway to report as a GraphQL error.
"""

from __future__ import annotations

from graphql import GraphQLError, OperationDefinitionNode

from pek.router.edge.errors import EdgeError
from pek.router.limits import parse_limited

#: Tokens in a GET query the edge is willing to parse to find its operation type.
MAX_GET_TOKENS = 20_000


def operation_type(
    query: str, operation_name: str | None, max_tokens: int = MAX_GET_TOKENS
) -> str | None:
    """``"query"``, ``"mutation"`` or ``"subscription"``; None when it cannot be told (also
    when the document has more than ``max_tokens`` tokens: the gateway refuses it)."""
    try:
        document = parse_limited(query, max_tokens, no_location=True)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return None
    return operations[0].operation.value


def allow_only_queries_over_get(
    query: str, operation_name: str | None, max_tokens: int = 0
) -> None:
    """Refuse (405, ``Allow: POST``) a mutation or subscription sent with GET.

    ``max_tokens`` is the router's token limit (``PEK_MAX_TOKENS``; 0: :data:`MAX_GET_TOKENS`).
    """
    kind = operation_type(query, operation_name, max_tokens or MAX_GET_TOKENS)
    if kind is not None and kind != "query":
        raise EdgeError(
            405,
            f"Can only perform a {kind} operation from a POST request",
            headers={"Allow": "POST"},
        )
