"""`homelab new`: the contributor guide as one command (plan in memory, then write atomically)."""
