"""Test support that later suites reuse: a real uvicorn server for any ASGI app, a small real
FHIR server, JWT signing helpers and protocol test services. See DEVELOPERS.md."""
