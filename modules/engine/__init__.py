"""Synth plumbing: app composition, the layer stack base, provider loading and its jsii kernel files."""
