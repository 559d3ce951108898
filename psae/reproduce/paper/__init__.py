"""The paper's protocol (Fig. 2): each model's own knobs chosen by validation CA, the chosen
point retrained per seed and scored once on test. ``settings`` (hidden sizes, epochs, grids),
``claims`` (the paper's six claims), ``figures``, ``tables`` and ``section`` (its part of the
report)."""
