"""meshkit: the one place a service learns "where is X and is it up" (no third-party deps)."""
