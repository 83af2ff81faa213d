"""Per-host deployment: what one mesh host needs (units, env templates, router, ops scripts,
install.sh), planned purely from the contracts and written as a self-contained bundle."""
