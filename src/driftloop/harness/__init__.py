"""Test and benchmark harnesses (load checks, traffic replay), not used by the runtime."""

__all__: list[str] = []
