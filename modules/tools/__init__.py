"""Tools that read synthesized output or compose the app for another purpose: export, diagram, cost, README, pipeline."""
