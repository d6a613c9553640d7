"""The ``driftloop`` command line (nothing imports this package)."""

__all__: list[str] = []
