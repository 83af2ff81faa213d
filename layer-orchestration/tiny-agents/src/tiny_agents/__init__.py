"""tiny-agents: a multi-step, tool-using agent that calls the gateway only."""
