"""HTTP controllers: DIGITS's routes, `/api/v1`, SSE, health; thin translators over commands."""
