"""Scarcity and urgency cues that can only tell the truth (PRODUCT.md section 6).

One module per concern, imported by its callers directly:

- :mod:`.config`: a rule's approved configuration and the in-process cache of live rules;
- :mod:`.evidence`: the worker that measures the numbers behind each claim, and their caches;
- :mod:`.claims`: the validator - whether a claim is true for a session now - and the admin preview;
- :mod:`.cues`: the decision path - the cues a session may see, and their ledger rows;
- :mod:`.offers`: offer terms that really end (the relaunch cooldown, no restarted
  countdown) and stock, set only through ``offer_stock_set`` / ``offers_stock_set``;
- :mod:`.rules`: pausing and resuming a rule;
- :mod:`.monitor_flags`: the monitor's flags for what looks like a fake;
- :mod:`.sensitivity`: the visitor's scarcity sensitivity, read and learned.

The read-only effectiveness of each rule (exposed against holdout) is
:func:`personalization.selectors.scarcity_effectiveness`.
"""
