"""Tool calls decided by the council: a request's functions checked (schema.py), what a head
wrote read as calls (parse.py), calls reduced to a canonical form the vote compares
(canonical.py), and which proposals may vote (decide.py); prompt.py tells a local head about
the tools when its chat template cannot. Pure functions over council.types: no heads, no
server.
"""
