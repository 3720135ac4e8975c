"""dagspace."""
