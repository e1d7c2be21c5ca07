"""Request policy, one module per concern: resolve (authority → destination), route, balance, deadline."""
