"""Channel-free conversations. Nothing here imports a transport."""
