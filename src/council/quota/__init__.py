"""Limits per key: requests per minute, tokens and USD per day, usage per key and head.

gate.py (`Quota`: admit a request, charge each head call), meter.py (the counters, in the
`limits` library's memory or Redis storage), ledger.py (overrides and usage in SQLite).
"""
