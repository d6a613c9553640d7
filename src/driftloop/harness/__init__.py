"""Test and benchmark harnesses (load checks, traffic, crash points), not used by the runtime."""

__all__: list[str] = []
