"""safety: the hazard log (DCB0129) and the safety case report (`make safety-case`)."""

__all__: list[str] = []
