"""Deployment: the local runner and helpers (Dockerfiles, k8s manifests and AsyncAPI live beside)."""
