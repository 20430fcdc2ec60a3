"""Playbooks: a signal on the bus becomes tasks on someone's list."""
