"""The training pipeline: time split, estimators, gate, ONNX export and lineage."""

__all__: list[str] = []
