"""The national identifiers the register checks, with no imports (the settings and the pure
profile both read them)."""

import re

__all__ = ["NHS_NUMBER_SYSTEM", "ODS_CODE", "ODS_SYSTEM"]

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
# ODS codes are 3 to 10 upper-case letters and digits (NHS England ODS, "ODS codes").
ODS_CODE = re.compile(r"[A-Z0-9]{3,10}")
