"""The hub subgraph: one identity per person, profiles, privacy settings, the realm registry."""
