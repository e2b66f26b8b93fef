"""Tooling around the product that the product never imports: the demo content and the demo shop."""
