"""The work of one command, without its argument parsing.

Loading and compressing layers (:mod:`.compress`), pruning with fine-tuning (:mod:`.prune`),
simulating a config (:mod:`.simulate`), choosing a hardware block and its spec
(:mod:`.hardware`), writing weight files (:mod:`.weights`), decode metrics
(:mod:`.decode_metrics`), and the text tables that print their results (:mod:`.tables`).
May import :mod:`codesign.models`, :mod:`codesign.hw` and :mod:`codesign.sim`; nothing
else of :mod:`codesign.experiments`.
"""
