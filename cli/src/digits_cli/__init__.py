"""The `digits` command: starts the whole system on one machine (launcher), later more verbs."""
