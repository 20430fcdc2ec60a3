"""The handoff service."""
