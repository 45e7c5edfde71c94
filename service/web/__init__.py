"""The clinician form: server-rendered HTML pages on the same core as the API."""
