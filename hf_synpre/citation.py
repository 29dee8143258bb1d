"""The paper this package implements, for cards and docs (one copy, imported everywhere).

Public API: PAPER, PAPER_URL, CITATION (BibTeX).
"""

__all__ = ["PAPER", "PAPER_URL", "CITATION"]

PAPER = "Insights into Pre-training via Simpler Synthetic Tasks (Wu, Li, Liang, NeurIPS 2022)"
PAPER_URL = "https://arxiv.org/abs/2206.10139"
CITATION = """@inproceedings{wu2022insights,
  title     = {Insights into Pre-training via Simpler Synthetic Tasks},
  author    = {Wu, Yuhuai and Li, Felix and Liang, Percy},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2022},
  url       = {https://arxiv.org/abs/2206.10139}
}"""
