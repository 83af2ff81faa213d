"""homelab-llm gateway extensions for the LiteLLM proxy (auth, health)."""
