"""Who may do what, and what is never trusted: callers, tokens, keys, names,
passwords, files a tenant controls, the service's own account."""
