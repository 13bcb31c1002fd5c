"""Custom Checkov policies loaded by the compliance gate."""
