"""Routing, all of its policy: task classification, the selector's plans (which strategy,
which heads), the governor (budget, local-only) and its spend ledger, the cognitive map and
certainty history the selector reads, and CloudRetry's walk over providers. It returns plans;
the Council runs them."""
