"""Running the service as an operations team does (docs/deployment.md): the shared jti replay
store in Redis (`redis_replay`), Prometheus metrics (`metrics`), JSON logs (`logs`),
OpenTelemetry traces (`tracing`) and several worker processes (`workers`).

Nothing here decides anything clinical; each module is an edge the app wires in.
"""
