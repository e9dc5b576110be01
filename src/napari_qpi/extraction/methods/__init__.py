"""The extraction methods; each is imported only when it runs (see ``..registry``)."""
