"""Real webhook payloads fetched from their published packages (cached under .cache/)."""
