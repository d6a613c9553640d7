"""Pure statistics: arrays in, numbers out; imported by every layer, importing none."""

__all__: list[str] = []
