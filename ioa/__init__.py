"""ioa: pedagogically-inspired knowledge distillation (Identifier -> Organizer -> Adapter)."""

__version__ = "0.1.0"
