"""Keys, CSRs, PEM files and certificate verification: the contracts of mesh identity."""
