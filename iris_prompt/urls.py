"""Every URL this project mints, from one base.

FHIR canonical URLs (the Questionnaire, its answer code system, the MAPPA flag profile's
extension and code systems, the card override reasons, the exported ValueSets and the code-set
extensions) all start with `CANONICAL_BASE`, so they cannot disagree, and a go-live change is one
line here. The pages the service serves are relative to the deployment's public base URL
(`IRIS_PUBLIC_BASE_URL`): `TEMPLATE_PATH`, and `RULES_PATH`, the clinical rules every card links
to.

The host is under `.invalid`, a top-level domain reserved never to resolve (RFC 2606 section 2):
it says honestly that the project has no registered domain yet. A canonical URL is an identifier
that entries and flags carry for ever, so a deployment must set this once, to a domain the
project controls, **before go-live**, and never change it afterwards.

    >>> CANONICAL_BASE
    'https://iris-prompt.invalid/fhir'
    >>> RISK_EXTENSION
    'https://iris-prompt.invalid/fhir/StructureDefinition/risk-of-serious-harm'
"""

__all__ = [
    "ANSWER_SYSTEM",
    "CANONICAL_BASE",
    "CODESET_EXTENSION_BASE",
    "GROUP_SYSTEM",
    "LEVEL_SYSTEM",
    "OVERRIDE_SYSTEM",
    "QUESTIONNAIRE_ID",
    "QUESTIONNAIRE_URL",
    "RISK_EXTENSION",
    "RULES_PATH",
    "TEMPLATE_PATH",
]

CANONICAL_BASE = "https://iris-prompt.invalid/fhir"

# The recording template (template/questionnaire.py).
QUESTIONNAIRE_ID = "domestic-abuse-enquiry"
QUESTIONNAIRE_URL = f"{CANONICAL_BASE}/Questionnaire/{QUESTIONNAIRE_ID}"
ANSWER_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/enquiry-answer"

# The MAPPA flag profile (engine/risk_flags.py; docs/mappa-flag.md).
RISK_EXTENSION = f"{CANONICAL_BASE}/StructureDefinition/risk-of-serious-harm"
GROUP_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/risk-of-serious-harm-group"
LEVEL_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/risk-of-serious-harm-level"

# Why a clinician dismissed a card (engine/cards.py): this project's own codes.
OVERRIDE_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/override-reason"

# Extensions on exported code-set ValueSets (codesets/valueset.py).
CODESET_EXTENSION_BASE = f"{CANONICAL_BASE}/StructureDefinition/"

# The recording template's page, relative to the service's public base URL.
TEMPLATE_PATH = "/template"

# The clinical rules (docs/rules.md, served by rules_page.py), relative to the public base URL.
RULES_PATH = "/rules"
