"""A small Django app for tenantproxy's client compatibility matrix."""
