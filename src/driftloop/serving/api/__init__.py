"""The server's endpoints as module-level functions, one module per API (mounted by serving.app)."""

__all__: list[str] = []
