"""iris-prompt: the IRIS electronic prompt for domestic abuse as a CDS Hooks 2.0 service."""

__all__: list[str] = []
