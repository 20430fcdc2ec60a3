"""The post-sales suite's own library: what every service uses, and nothing service-specific."""
