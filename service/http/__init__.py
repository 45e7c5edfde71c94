"""What every HTTP door shares: reading a body within its limit, problem+json and its documentation,
and the API key. No door's content lives here, and nothing here imports a door."""
