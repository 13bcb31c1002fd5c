"""The platform's layers: one module per Terraform stack, plus the state stack. Layers import parts and config only."""
