"""Model serving: the ASGI app, its endpoints grouped by API, routing and the prediction log."""

__all__: list[str] = []
