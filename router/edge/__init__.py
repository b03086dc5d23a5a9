"""The router's HTTP edge, one small layer per concern (like Apollo Router's ``layers/``).

``pek.router.http.create_app`` composes them into the public Starlette app:
content negotiation -> request parsing (body limit, JSON shape) -> CSRF prevention ->
only-POST mutations -> forwarded headers / query plan opt-in -> the gateway.
"""
