"""The one base of every FHIR canonical URL this project mints.

The Questionnaire, its answer code system, the exported ValueSets and the code-set extensions
all take their canonical URLs from `CANONICAL_BASE`, so they cannot disagree.

The host is under `.invalid`, a top-level domain reserved never to resolve (RFC 2606 section 2):
it says honestly that the project has no registered domain yet. A canonical URL is an identifier
that entries carry for ever, so a deployment must set this once, to a domain the project
controls, **before go-live**, and never change it afterwards.

    >>> CANONICAL_BASE
    'https://iris-prompt.invalid/fhir'
"""

__all__ = ["CANONICAL_BASE"]

CANONICAL_BASE = "https://iris-prompt.invalid/fhir"
