"""Translation between OpenAI's chat format and Anthropic's Messages format, both ways."""
