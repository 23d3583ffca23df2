"""Development and test doubles of the parties around the identity provider (service providers, upstream)."""
