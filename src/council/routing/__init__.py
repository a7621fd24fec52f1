"""Routing around the ballot: the governor (budget, local-only), the spend ledger, the
cognitive map the selector reads, and CloudRetry's walk over providers."""
