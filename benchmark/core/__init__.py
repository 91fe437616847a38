"""Layer 0: errors, the registry, paths, hashing and the typed result record (imports nothing of the project)."""
