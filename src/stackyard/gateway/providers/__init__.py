"""Providers: one module each, registered in ``registry``."""
