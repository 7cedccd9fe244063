"""CDS Hooks 2.0 protocol: models, discovery, invocation, prefetch, caller authentication.

Knows nothing about domestic abuse; a second, unrelated service can reuse it unchanged.
"""

__all__: list[str] = []
