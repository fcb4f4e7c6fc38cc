"""The HTTP side of the `digits` user verbs: login storage, requests, uploads, following jobs."""
