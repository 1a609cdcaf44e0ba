"""Commands of this group (filled in by its owner)."""
