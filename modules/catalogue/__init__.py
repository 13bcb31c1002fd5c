"""Catalogues as plain data, below everything: the config validates against them, the layers build from them."""
