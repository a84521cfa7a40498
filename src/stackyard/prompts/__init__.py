"""The prompt registry: versioned prompts, labels that release them, and their use through the
gateway."""
