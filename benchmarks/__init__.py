"""`python -m benchmarks` (what `make bench` runs): every module here with a `run()` returning
`list[Row]` is a section; the rows of all sections print as one table.

To add a section, add `benchmarks/<name>.py` with `def run() -> list[Row]`; nothing else.
"""
