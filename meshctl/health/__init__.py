"""`meshctl check`: the check registry, the runner, the renderers and each platform's catalogue of checks."""
