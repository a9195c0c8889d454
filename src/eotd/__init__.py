"""eotd: distil CoT, PoT and EoT math reasoning from a teacher into a small student (Zhu et al., arXiv 2401.11864)."""
from eotd.verify import Verdict, verify, verify_many

__all__ = ["Verdict", "verify", "verify_many"]
__version__ = "0.1.0"
