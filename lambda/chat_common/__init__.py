"""Code shared by the realtime chat functions; shipped inside every function's zip."""
