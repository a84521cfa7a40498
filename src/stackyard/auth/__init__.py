"""Authentication and admission: virtual keys, model scopes, rate limits and budgets."""
