"""The application layer: demo, report, doctor, project scaffolding and example tables."""

__all__: list[str] = []
