"""The generation parameters of a prepared synthetic split: their names and the paper's sizes.

Public API:
    PAPER_NUM_TRAIN, PAPER_NUM_VALIDATION -- the paper's split sizes (1,000,000 train / 10,000 validation)
    GENERATION_FIELDS                     -- ``SyntheticTaskConfig``'s generation fields, in order

A leaf with no imports, so that the command line can build its flags from it without importing
``datasets``: the builder's config, the CLI's options and the Hub publisher all take these from here.
"""

__all__ = ["PAPER_NUM_TRAIN", "PAPER_NUM_VALIDATION", "GENERATION_FIELDS"]

PAPER_NUM_TRAIN = 1_000_000
PAPER_NUM_VALIDATION = 10_000

# what a split depends on besides the task (SyntheticTaskConfig checks that it has each of them)
GENERATION_FIELDS = ("num_train", "num_validation", "num_generated", "length_range", "seed", "tokenizer", "content_vocab_size")
