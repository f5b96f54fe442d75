"""CLI sub-apps, one module per area. Command bodies import their area lazily (see harmowam_edge.cli)."""
