"""Schemas: validation and normalization of every payload, in and out."""
