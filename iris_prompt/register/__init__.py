"""The shared MAPPA flag register (docs/register.md): a FHIR Flag API that MAPPA partners
publish into with SMART Backend Services credentials, and that every household check consults.

    clients.py      the configured partner systems and scopes (read by the settings)
    identifiers.py  the NHS number and ODS code systems
    profile.py      which Flags the register accepts (pure), and its StructureDefinition
    tables.py       its tables, in the store's database
    repository.py   flags, versions, searches and recorded reads
    auth.py         POST /oauth/token: client assertions in, access tokens out
    api.py          the /fhir/Flag routes
    capability.py   the CapabilityStatement and SMART configuration
    access_log.py   a flag's access log for its owner
    retention.py    deleting flags partners ended long ago, once a deployment sets the period
    service.py      the register as the app and the household check see it
"""
