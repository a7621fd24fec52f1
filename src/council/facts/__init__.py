"""Facts a user stated about themselves, kept whatever the answer's label.

ledger.py    the facts and the durable job queue (SQL, migration m008)
extract.py   candidate facts from a user's turn: a head, else the turn verbatim
reconcile.py ADD / UPDATE / NOOP against the user's current facts
topics.py    what a fact is about, by meaning (prompts/fact_topics.yaml): one value or many
facts.py     Facts: learn (one job), recall (vector lookup), list, edit, forget; the worker
"""
