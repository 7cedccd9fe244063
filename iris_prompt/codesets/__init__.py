"""codesets"""

__all__: list[str] = []
