"""rdistill: ranking distillation with control over locality (sampling) and entropy (teacher informativeness)."""

__version__ = "0.1.0"
