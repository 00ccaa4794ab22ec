from distill.knowledge.taps import Taps, find_module
from distill.knowledge.teacher import LiveTeacher, freeze

__all__ = ["LiveTeacher", "Taps", "find_module", "freeze"]
