"""Shared by the FHIR tests (`test_fhir_prefetch.py`, `test_fhir_client.py`): the limits of a
client reading the tests' FHIR server, over plain HTTP on loopback."""

from cds_hooks.fhir import FhirLimits

LIMITS = FhirLimits(allow_http=True, allow_private=True, read_timeout=1.0, total_timeout=2.0)
