"""mesh-status: read-only MCP tools over the mesh itself (models, health, topology)."""
