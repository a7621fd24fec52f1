"""Who is asking: users, their API keys, and the caller of the request in flight."""
